"""WS-Management envelopes: read a request, write a response or a WSManFault.

Only the subset WinRM clients use for shells ([MS-WSMV]): the header fields that route a
request (Action, ResourceURI, MessageID, SelectorSet, OptionSet, OperationTimeout) and
the bodies of Create, Command, Send, Receive, Signal, Delete and Get. Faults carry the
Windows ``WSManFault Code`` that pypsrp and pywinrm branch on.
"""

from __future__ import annotations

import re
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

NS = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "wsa": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    "wsman": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
    "wsmv": "http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd",
    "wsmanfault": "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault",
    "rsp": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell",
    "wst": "http://schemas.xmlsoap.org/ws/2004/09/transfer",
    "pwsh": "http://schemas.microsoft.com/powershell",
    "xml": "http://www.w3.org/XML/1998/namespace",
}
for _prefix, _uri in NS.items():
    if _prefix != "xml":
        ET.register_namespace(_prefix, _uri)

ANONYMOUS = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"
SHELL_URI = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
CMD_URI = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd"
FAULT_ACTION = "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault"

#: Short names (what the request counter reports) of the WS-Management actions served.
ACTIONS = {
    "http://schemas.xmlsoap.org/ws/2004/09/transfer/Create": "Create",
    "http://schemas.xmlsoap.org/ws/2004/09/transfer/Delete": "Delete",
    "http://schemas.xmlsoap.org/ws/2004/09/transfer/Get": "Get",
    f"{SHELL_URI}/Command": "Command",
    f"{SHELL_URI}/Send": "Send",
    f"{SHELL_URI}/Receive": "Receive",
    f"{SHELL_URI}/Signal": "Signal",
}
RESPONSE_ACTIONS = {
    "Create": "http://schemas.xmlsoap.org/ws/2004/09/transfer/CreateResponse",
    "Delete": "http://schemas.xmlsoap.org/ws/2004/09/transfer/DeleteResponse",
    "Get": "http://schemas.xmlsoap.org/ws/2004/09/transfer/GetResponse",
    "Command": f"{SHELL_URI}/CommandResponse",
    "Send": f"{SHELL_URI}/SendResponse",
    "Receive": f"{SHELL_URI}/ReceiveResponse",
    "Signal": f"{SHELL_URI}/SignalResponse",
}

# wsmerror.h codes, and the text Windows puts with them.
OPERATION_TIMEOUT = 2150858793  # 0x80338029 ERROR_WSMAN_OPERATION_TIMEDOUT
SHELL_NOT_FOUND = 2150858843  # 0x8033805B ERROR_WSMAN_INVALID_SELECTORS
QUOTA_MAX_SHELLS = 2150859173  # 0x803381A5 ERROR_WSMAN_QUOTA_MAX_SHELLS
ACTION_NOT_SUPPORTED = 2150858756  # 0x80338004 ERROR_WSMAN_ACTION_NOT_SUPPORTED
INVALID_MESSAGE = 2150858817  # 0x80338041 ERROR_WSMAN_INVALID_MESSAGE_INFORMATION_HEADER

_DURATION = re.compile(r"^PT(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?$")


class SoapError(Exception):
    """A request this endpoint cannot parse or does not serve: answered with a WSManFault."""

    def __init__(self, code: int, reason: str, subcode: str = "w:InvalidMessageInformationHeader") -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.subcode = subcode


@dataclass
class Request:
    action_uri: str
    action: str
    resource_uri: str
    message_id: str
    operation_timeout: float
    body: ET.Element
    selectors: dict[str, str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)

    def child(self, path: str) -> ET.Element | None:
        return self.body.find(path, NS)


def parse_duration(text: str | None, default: float) -> float:
    if not text:
        return default
    m = _DURATION.match(text.strip())
    if not m:
        return default
    minutes, seconds = m.groups()
    return float(minutes or 0) * 60 + float(seconds or 0)


def parse(data: bytes) -> Request:
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise SoapError(INVALID_MESSAGE, f"The request is not well-formed XML: {exc}") from None
    header = root.find("s:Header", NS)
    body = root.find("s:Body", NS)
    if header is None or body is None:
        raise SoapError(INVALID_MESSAGE, "The request has no SOAP Header or Body.")
    action_uri = (header.findtext("wsa:Action", "", NS) or "").strip()
    action = ACTIONS.get(action_uri)
    if action is None:
        raise SoapError(ACTION_NOT_SUPPORTED, f"The WS-Management service does not support the action {action_uri}.",
                        "wsa:ActionNotSupported")
    selectors = {s.get("Name", ""): (s.text or "") for s in header.findall("wsman:SelectorSet/wsman:Selector", NS)}
    options = {o.get("Name", ""): (o.text or "") for o in header.findall("wsman:OptionSet/wsman:Option", NS)}
    return Request(
        action_uri=action_uri,
        action=action,
        resource_uri=(header.findtext("wsman:ResourceURI", "", NS) or "").strip(),
        message_id=(header.findtext("wsa:MessageID", "", NS) or "").strip(),
        operation_timeout=parse_duration(header.findtext("wsman:OperationTimeout", None, NS), 60.0),
        body=body,
        selectors=selectors,
        options=options,
    )


def _q(prefix: str, name: str) -> str:
    return f"{{{NS[prefix]}}}{name}"


def envelope(action_uri: str, relates_to: str, body: ET.Element | None = None) -> bytes:
    env = ET.Element(_q("s", "Envelope"))
    head = ET.SubElement(env, _q("s", "Header"))
    ET.SubElement(head, _q("wsa", "Action")).text = action_uri
    ET.SubElement(head, _q("wsa", "MessageID")).text = f"uuid:{str(uuid.uuid4()).upper()}"
    ET.SubElement(head, _q("wsa", "To")).text = ANONYMOUS
    ET.SubElement(head, _q("wsa", "RelatesTo")).text = relates_to
    b = ET.SubElement(env, _q("s", "Body"))
    if body is not None:
        b.append(body)
    out: bytes = ET.tostring(env, encoding="utf-8", xml_declaration=False)
    return out


def response(req: Request, body: ET.Element | None = None) -> bytes:
    return envelope(RESPONSE_ACTIONS[req.action], req.message_id, body)


def fault(relates_to: str, code: int, reason: str, *, subcode: str = "w:InternalError", machine: str = "") -> bytes:
    """A SOAP 1.2 fault with the WSManFault detail Windows sends (HTTP 500)."""
    f = ET.Element(_q("s", "Fault"))
    c = ET.SubElement(f, _q("s", "Code"))
    ET.SubElement(c, _q("s", "Value")).text = "s:Receiver"
    sub = ET.SubElement(c, _q("s", "Subcode"))
    ET.SubElement(sub, _q("s", "Value")).text = subcode
    r = ET.SubElement(f, _q("s", "Reason"))
    ET.SubElement(r, _q("s", "Text"), {_q("xml", "lang"): "en-US"}).text = reason
    d = ET.SubElement(f, _q("s", "Detail"))
    wf = ET.SubElement(d, _q("wsmanfault", "WSManFault"), {"Code": str(code), "Machine": machine})
    ET.SubElement(wf, _q("wsmanfault", "Message")).text = reason
    return envelope(FAULT_ACTION, relates_to, f)


def operation_timeout_fault(req: Request, machine: str) -> bytes:
    return fault(req.message_id, OPERATION_TIMEOUT,
                 "The WS-Management service cannot complete the operation within the time specified in "
                 "OperationTimeout.", subcode="w:TimedOut", machine=machine)


def shell_not_found_fault(req: Request, shell_id: str, machine: str) -> bytes:
    return fault(req.message_id, SHELL_NOT_FOUND,
                 f"The request for the Windows Remote Shell with ShellId {shell_id} failed because the shell was not "
                 "found on the server. Possible causes are: the specified ShellId is incorrect or the shell no longer "
                 "exists on the server. Provide the correct ShellId or create a new shell and retry the operation.",
                 subcode="w:InvalidSelectors", machine=machine)


def quota_fault(req: Request, machine: str, limit: int) -> bytes:
    return fault(req.message_id, QUOTA_MAX_SHELLS,
                 f"The WS-Management service cannot process the request. This user is allowed a maximum number of "
                 f"{limit} concurrent shells, which has been exceeded. Close existing shells or raise the quota for "
                 "this user.", subcode="wsman:QuotaLimit", machine=machine)


def el(prefix: str, name: str, text: str | None = None, attrib: dict[str, str] | None = None,
       parent: ET.Element | None = None) -> ET.Element:
    node = ET.Element(_q(prefix, name), attrib or {}) if parent is None else ET.SubElement(
        parent, _q(prefix, name), attrib or {})
    if text is not None:
        node.text = text
    return node


def shell_created(req: Request, address: str, shell_id: str, resource_uri: str, *, owner: str,
                  client_ip: str, input_streams: str, output_streams: str) -> bytes:
    created = el("wst", "ResourceCreated")
    el("wsa", "Address", address, parent=created)
    params = el("wsa", "ReferenceParameters", parent=created)
    el("wsman", "ResourceURI", resource_uri, parent=params)
    sel = el("wsman", "SelectorSet", parent=params)
    el("wsman", "Selector", shell_id, {"Name": "ShellId"}, parent=sel)
    shell = shell_info(shell_id, resource_uri, owner=owner, client_ip=client_ip, input_streams=input_streams,
                       output_streams=output_streams)
    env = ET.fromstring(envelope(RESPONSE_ACTIONS["Create"], req.message_id, created))
    b = env.find("s:Body", NS)
    assert b is not None
    b.append(shell)
    out: bytes = ET.tostring(env, encoding="utf-8")
    return out


def shell_info(shell_id: str, resource_uri: str, *, owner: str, client_ip: str, input_streams: str,
               output_streams: str, state: str = "Connected") -> ET.Element:
    shell = el("rsp", "Shell")
    el("rsp", "ShellId", shell_id, parent=shell)
    el("rsp", "ResourceUri", resource_uri, parent=shell)
    el("rsp", "Owner", owner, parent=shell)
    el("rsp", "ClientIP", client_ip, parent=shell)
    el("rsp", "ProcessId", "4242", parent=shell)
    el("rsp", "IdleTimeOut", "PT7200.000S", parent=shell)
    el("rsp", "InputStreams", input_streams, parent=shell)
    el("rsp", "OutputStreams", output_streams, parent=shell)
    el("rsp", "State", state, parent=shell)
    return shell
