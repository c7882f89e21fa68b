"""The roles a caller can have, and the named groups of them that routes, services, the console
and the CLI allow. Each group is written here once; its order is the order a 403 names it in.
A module of its own, importing nothing, so that every router can name a group without
depending on `huying.auth` (whose service depends on the directory).

The workflow files have a vocabulary of their own (`huying.workflow.definition.ROLES`: also
"system" and "lead_department", the department role bound to the request's lead department);
`tests/auth/test_roles.py` keeps the two consistent.
"""

from __future__ import annotations

ADMIN = "admin"
DISPATCHER = "dispatcher"
SUPERVISOR = "supervisor"
DEPARTMENT = "department"
INTEGRATION = "integration"
MONITOR = "monitor"

ROLES = (ADMIN, DISPATCHER, SUPERVISOR, DEPARTMENT, INTEGRATION, MONITOR)
# Roles for other systems: they get API keys, never a user with a password.
SYSTEM_ROLES = (INTEGRATION, MONITOR)
# People: staff users with a password, who may use the console.
STAFF_ROLES = (ADMIN, DISPATCHER, SUPERVISOR, DEPARTMENT)

# Who works with requests: every role but `monitor`, which only scrapes /metrics.
REQUEST_WORKERS = (ADMIN, DISPATCHER, SUPERVISOR, DEPARTMENT, INTEGRATION)
# Who may submit a request.
SUBMITTERS = (INTEGRATION, DISPATCHER, ADMIN)
# Who dispatches: the console's dispatch queue.
DISPATCHERS = (DISPATCHER, ADMIN)
# Who oversees the work of every department: the routing rules, the supervision board.
COORDINATORS = (ADMIN, DISPATCHER, SUPERVISOR)
# Who reads the rates.
SUPERVISORS = (SUPERVISOR, ADMIN)
# Who registers enterprises, and who may look one up.
ENTERPRISE_WRITERS = (ADMIN, INTEGRATION)
ENTERPRISE_READERS = (ADMIN, INTEGRATION, DISPATCHER, SUPERVISOR)
# The directory's other writes, webhooks and deliveries.
ADMINS = (ADMIN,)
# Bound to a department they see and act on with everything below it: department staff
# always, a dispatcher or supervisor when given one (a street's own command centre).
SCOPED_BY_DEPARTMENT = (DEPARTMENT, DISPATCHER, SUPERVISOR)
# Who sees the public view of a request only (huying.requests.presenters.public_view).
PUBLIC_VIEW = (INTEGRATION,)
