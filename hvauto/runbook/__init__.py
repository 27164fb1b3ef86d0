"""Runbooks: YAML playbooks that chain hvauto operations, journalled so a killed run resumes.

    loader.py      YAML with line marks -> Runbook; ``validate`` finds every problem, no remote call
    schema.json    the format's JSON Schema (package data); schema.py checks documents against it
    operations.py  the registry: op name -> function (imported lazily) and its option schema
    templating.py  sandboxed Jinja2 for values and ``when`` expressions (never for PowerShell)
    custom.py      the ``powershell`` step: a user's own ``.ps1.j2`` under hvauto's template rules
    engine.py      runs steps x hosts, records each in the journal (hvauto/journal.py), resumes
"""
