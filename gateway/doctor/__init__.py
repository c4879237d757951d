"""``gateway doctor``: everything ``gateway run`` (or ``ingest``) needs, checked on the spot.

A library first: :func:`run_doctor` returns typed :class:`CheckResult` records
(name, ok/warn/fail, detail, fix), so the CLI, the web console and provisioning
(``gateway enroll``) show and act on the same checks. Each check is one module,
listed in the explicit registry :data:`CHECKS`.
"""

from gateway.doctor.context import Context, Role
from gateway.doctor.result import STATUSES, CheckResult, DoctorReport, Status
from gateway.doctor.runner import CHECKS, CheckSpec, roles_of, run_doctor

__all__ = [
    "CHECKS",
    "STATUSES",
    "CheckResult",
    "CheckSpec",
    "Context",
    "DoctorReport",
    "Role",
    "Status",
    "roles_of",
    "run_doctor",
]
