"""The audit log: who changed what in the administration, with before and after."""
