"""PowerShell 2.0 pieces both families of scripts use: services and export files. Nothing here
reads Active Directory: the adapter does, with its own LDAP connection (ports.ExchangeCatalog)."""

from __future__ import annotations

# Every script enumerates what it looks things up in once, into a hashtable, never once per
# target (a batch of 1,000 targets must not list the server's services 1,000 times).
SERVICE_INDEX = r"""
function Get-RemediateServiceIndex {
    $index = @{}
    foreach ($service in @(Get-Service)) {
        $index[[string]$service.Name] = $service
    }
    return $index
}

function Find-RemediateService {
    param($Index, [string]$Name)
    if (-not $Index.ContainsKey($Name)) {
        Stop-RemediateRefused ('no service ' + $Name + ' on ' + $env:COMPUTERNAME) $Name
    }
    return $Index[$Name]
}
"""

SERVICES = (
    SERVICE_INDEX
    + r"""
function Invoke-RemediateOperation {
    param($Parameters)
    $index = Get-RemediateServiceIndex
    $states = @{}
    foreach ($name in $Parameters.names) {
        $service = Find-RemediateService $index $name
        if ($service.Status -eq 'Running') {
            $states[$name] = 'running'
        }
        else {
            $states[$name] = 'stopped'
        }
    }
    return $states
}
"""
)

# Stop-Service -Force stops the services that depend on it as well: the plan reads which of them
# run, so that they are recorded and started again.
DEPENDENTS = (
    SERVICE_INDEX
    + r"""
function Invoke-RemediateOperation {
    param($Parameters)
    $index = Get-RemediateServiceIndex
    $found = @{}
    foreach ($name in $Parameters.names) {
        $service = Find-RemediateService $index $name
        $found[$name] = @(@($service.DependentServices) | Where-Object { $_.Status -eq 'Running' } | ForEach-Object { [string]$_.Name })
    }
    return $found
}
"""
)

SET_SERVICES = (
    SERVICE_INDEX
    + r"""
function Invoke-RemediateOperation {
    param($Parameters)
    $index = Get-RemediateServiceIndex
    $services = @()
    foreach ($name in $Parameters.names) {
        $services += Find-RemediateService $index $name
    }
    foreach ($service in $services) {
        if ($Parameters.state -eq 'running') {
            Start-Service -InputObject $service
        }
        else {
            Stop-Service -InputObject $service -Force
        }
    }
    return $null
}
"""
)

EXPORTS = r"""
function Invoke-RemediateOperation {
    param($Parameters)
    Assert-RemediateExportDirectory $Parameters.directory
    $found = @{}
    foreach ($guid in $Parameters.guids) {
        $record = Get-RemediateExportRecord $Parameters.directory $guid
        if ($null -ne $record.file_bytes_now -or $null -ne $record.evidence) {
            $found[$guid] = $record
        }
    }
    return $found
}
"""

# The export directory holds, per exported mailbox GUID: <guid>.pst (the export), <guid>.export.json
# (what the export tool reported when it finished: the evidence a purge relies on, since a PST's
# item ids are not the mailbox's) and <guid>.import.<target guid>.json (what the import tool
# reported). An export made again moves the earlier files aside, never over them.
EXPORT_FILES = r"""
function Get-RemediateExportPath {
    param([string]$Directory, [string]$Mailbox, [string]$Suffix)
    return Join-Path $Directory (([guid]$Mailbox).ToString() + $Suffix)
}

function Get-RemediateFileBytes {
    param([string]$Path)
    if (Test-Path -LiteralPath $Path) {
        return [long](Get-Item -LiteralPath $Path).Length
    }
    return $null
}

function Assert-RemediateExportDirectory {
    param([string]$Directory)
    if (-not (Test-Path -LiteralPath $Directory)) {
        Stop-RemediateRefused ('the export directory ' + $Directory + ' cannot be reached from ' + $env:COMPUTERNAME + ': it does not exist, or this WinRM session has no credentials to pass on to the file server (the double hop of an NTLM session: use transport = "credssp", or Kerberos with delegation)') $Directory
    }
}

function Write-RemediateRecord {
    param([string]$Path, $Record)
    $Record['format'] = 'remediate.mail-evidence/1'
    $Record['server'] = $env:COMPUTERNAME
    $Record['finished_at'] = (Get-Date).ToUniversalTime().ToString('yyyy-MM-ddTHH:mm:ssZ')
    [System.IO.File]::WriteAllText($Path, (ConvertTo-RemediateJson $Record))
}

function Get-RemediateExportRecord {
    param([string]$Directory, [string]$Mailbox)
    $evidence = $null
    $manifest = Get-RemediateExportPath $Directory $Mailbox '.export.json'
    if (Test-Path -LiteralPath $manifest) {
        $evidence = [System.IO.File]::ReadAllText($manifest)
    }
    $imports = @()
    foreach ($file in @(Get-ChildItem -LiteralPath $Directory -Filter (([guid]$Mailbox).ToString() + '.import.*.json'))) {
        $imports += [System.IO.File]::ReadAllText($file.FullName)
    }
    $path = Get-RemediateExportPath $Directory $Mailbox '.pst'
    return @{ location = $path; file_bytes_now = (Get-RemediateFileBytes $path); evidence = $evidence; imports = $imports }
}

function Move-RemediateEarlierExport {
    param([string]$Directory, [string]$Mailbox)
    $stamp = (Get-Date).ToUniversalTime().ToString('yyyyMMddTHHmmssZ')
    foreach ($suffix in @('.pst', '.export.json', '.exmerge.log', '.exmerge-name.txt')) {
        $path = Get-RemediateExportPath $Directory $Mailbox $suffix
        if (Test-Path -LiteralPath $path) {
            Move-Item -LiteralPath $path -Destination (Get-RemediateExportPath $Directory $Mailbox ('.superseded-' + $stamp + $suffix))
        }
    }
    foreach ($file in @(Get-ChildItem -LiteralPath $Directory -Filter (([guid]$Mailbox).ToString() + '.import.*'))) {
        Move-Item -LiteralPath $file.FullName -Destination (Get-RemediateExportPath $Directory $Mailbox ('.superseded-' + $stamp + $file.Name.Substring(36)))
    }
}
"""
