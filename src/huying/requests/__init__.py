"""Service requests (诉求): intake, the lifecycle through the workflow engine, the timeline."""
