r"""SMB 3.0 shares for VM storage: Full Control for the Hyper-V hosts on share and folder.

Each action inspects the share in one round trip (``smb_share_get``: settings, share ACL,
folder ACL by SID, open files, and the SIDs of the accounts hvauto wants), computes the
plan here in Python (the SMB cmdlets do not honour ``-WhatIf`` reliably), and applies it
in one more round trip (``smb_share_apply``), which reads the share back so the result is
verified against the plan. Principals are compared by SID: account names are localised
("Everyone" is "Jeder" on a German server) and the SIDs come from the server itself.

What counts as *extra*: a share ACL entry for any principal hvauto was not asked for, and an
explicit (not inherited) folder ACE for one, except SYSTEM, BUILTIN\Administrators and
CREATOR OWNER, which a folder keeps. Extras are reported; ``prune`` removes them.
"""

from hvauto.ops.smb.acl import (
    FOLDER_KEEP,
    FolderAce,
    Grantee,
    OpenFile,
    ShareAce,
    SharePlan,
    ShareState,
    Wanted,
    apply_params,
    plan_share,
    read_share,
)
from hvauto.ops.smb.share import (
    HostAccess,
    RemoveResult,
    ShareResult,
    ShareView,
    VmOnShare,
    create,
    grant,
    remove,
    revoke,
    show,
    show_accounts,
)
from hvauto.ops.smb.validate import (
    EVERYONE,
    PATH_MAX,
    SHARE_NAME_MAX,
    account_problems,
    expand_hosts,
    local_path_problems,
    qualify,
    share_name_problems,
)

__all__ = [
    'EVERYONE',
    'SHARE_NAME_MAX',
    'PATH_MAX',
    'share_name_problems',
    'local_path_problems',
    'expand_hosts',
    'qualify',
    'account_problems',
    'FOLDER_KEEP',
    'Wanted',
    'Grantee',
    'ShareAce',
    'FolderAce',
    'OpenFile',
    'ShareState',
    'read_share',
    'SharePlan',
    'plan_share',
    'apply_params',
    'ShareResult',
    'show_accounts',
    'create',
    'grant',
    'revoke',
    'HostAccess',
    'ShareView',
    'show',
    'VmOnShare',
    'RemoveResult',
    'remove',
]
