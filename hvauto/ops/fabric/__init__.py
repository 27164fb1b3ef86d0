"""The host network design as code: a declarative spec, validated, planned per host, applied safely.

A spec (YAML, schema ``hvauto/schemas/fabric.schema.json``) declares one virtual switch and its
uplinks, the teaming (SET on 2016+, an LBFO team under the switch on 2012/2012 R2), the host
vNICs per role with QoS weights, VLANs and per-host addresses, the default-flow weight and the
live-migration networks. The flow, per host:

1. :func:`load_spec` checks the design before any host is contacted (schema, then the rules in
   hyperv-notes: weights, live migration off the management network, iSCSI on its own adapters,
   a management address for every host); every problem at once, with file, key and reason.
2. :func:`plan` reads each host in one round trip (``fabric_get``) and computes what would change,
   in the order it would run: team, switch, host vNICs (management first), weights (decreases
   first), VLANs, addresses, then the lock-out guard, and only then anything that removes an old
   path. A change that re-creates a switch is always listed as such and is refused while VMs are
   attached unless ``force``; a plan that leaves a host without a management address is refused.
3. :func:`apply` refuses the whole group when any host has a blocking problem (nothing changed),
   runs ``fabric_apply`` with the plan as explicit parameter lists, then reads the host again and
   checks that nothing is left to change.
"""

from hvauto.ops.fabric.group import FabricReport, apply, apply_steps, plan, plan_steps
from hvauto.ops.fabric.hostplan import APPLY_ORDER, HostPlan, compute_plan
from hvauto.ops.fabric.rules import LBFO_2022
from hvauto.ops.fabric.spec import ROLES_FIRST, SCHEMA, FabricSpec, HostSpec, VnicSpec, load_spec

__all__ = [
    'apply_steps',
    'plan_steps',
    'SCHEMA',
    'ROLES_FIRST',
    'VnicSpec',
    'HostSpec',
    'FabricSpec',
    'load_spec',
    'LBFO_2022',
    'APPLY_ORDER',
    'HostPlan',
    'compute_plan',
    'FabricReport',
    'plan',
    'apply',
]
