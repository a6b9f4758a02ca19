"""Exchange 2007-2019/SE through the Exchange Management Shell cmdlets. 2007/2010 hosts run
Windows PowerShell 2.0 (one base64 argument per parameter); 2013 and later 3.0+ (base64 JSON)."""

from __future__ import annotations

import re

from remediate.model import ExchangeVersion

from . import shared
from .assembly import Dialect, Script, assemble
from .parameters import PARAMETERS

# 2007 has only the local snap-in; 2010+ load the shell the way the Management Shell shortcut does.
_SETUP_2007 = "Add-PSSnapin Microsoft.Exchange.Management.PowerShell.Admin"
_SETUP = r"""
. (Join-Path $env:ExchangeInstallPath 'bin\RemoteExchange.ps1')
try {
    Connect-ExchangeServer -auto -ClientApplication:ManagementShell
}
catch {
    Stop-RemediateIfDoubleHop $_ 'connecting the Exchange Management Shell (Connect-ExchangeServer)'
    throw
}
if ($null -eq (Get-Command Get-MailboxDatabase -ErrorAction SilentlyContinue)) {
    Stop-RemediateDoubleHop 'connecting the Exchange Management Shell (Connect-ExchangeServer)' 'no Exchange cmdlets after it'
}
"""

_DESCRIBE = r"""
function Invoke-RemediateOperation {
    param($Parameters)
    $server = Get-ExchangeServer -Identity $env:COMPUTERNAME -Status
    $stores = @()
    foreach ($database in @(Get-MailboxDatabase -Server $env:COMPUTERNAME)) {
        $group = ''
        if ($database.StorageGroupName) {
            $group = [string]$database.StorageGroupName
        }
        $stores += @{ name = [string]$database.Name; storage_group = $group; dn = [string]$database.DistinguishedName }
    }
    return @{ dc = [string]$server.CurrentDomainControllers[0]; stores = $stores; admin_display_version = [string]$server.AdminDisplayVersion }
}
"""

_STATISTICS = r"""
function ConvertTo-RemediateBytes {
    param($Size)
    if ($null -ne $Size -and ([string]$Size) -match '\(([^)]*) bytes\)') {
        return [long]($matches[1] -replace '[^0-9]', '')
    }
    return $null
}

function Get-RemediateStatistics {
    $all = @()
    foreach ($database in @(Get-MailboxDatabase -Server $env:COMPUTERNAME)) {
        $all += @(Get-MailboxStatistics -Database $database.Identity)
    }
    return ,$all
}

function Find-RemediateStatistics {
    param([string]$Guid)
    $wanted = [guid]$Guid
    foreach ($statistics in (Get-RemediateStatistics)) {
        if ($statistics.MailboxGuid -eq $wanted) {
            return $statistics
        }
    }
    Stop-RemediateRefused ('no mailbox ' + $Guid + ' on ' + $env:COMPUTERNAME) $Guid
}
"""

_MAILBOXES = r"""
function Invoke-RemediateOperation {
    param($Parameters)
    $wanted = @{}
    foreach ($guid in $Parameters.guids) {
        $wanted[([guid]$guid).ToString()] = $true
    }
    $found = @()
    foreach ($statistics in (Get-RemediateStatistics)) {
        $guid = $statistics.MailboxGuid.ToString()
        if ($Parameters.scope -eq 'all' -or $wanted.ContainsKey($guid)) {
            $database = Get-MailboxDatabase -Identity $statistics.Database
            $absent = $null
            if ($statistics.DisconnectDate) {
                $absent = $statistics.DisconnectDate.ToUniversalTime().ToString('yyyy-MM-ddTHH:mm:ssZ')
            }
            $logon = $null
            if ($statistics.LastLogonTime) {
                $logon = $statistics.LastLogonTime.ToUniversalTime().ToString('yyyy-MM-ddTHH:mm:ssZ')
            }
            $found += @{
                guid = $guid
                store_dn = [string]$database.DistinguishedName
                legacy_dn = [string]$statistics.LegacyDN
                display_name = [string]$statistics.DisplayName
                disconnected_at = $absent
                last_logon_at = $logon
                items = [long]$statistics.ItemCount
                size_bytes = ConvertTo-RemediateBytes $statistics.TotalItemSize
                owner = Get-RemediateOwner $guid
            }
        }
    }
    return ,$found
}
"""

_CLEAN_2007 = r"""
function Invoke-RemediateOperation {
    param($Parameters)
    foreach ($dn in $Parameters.store_dns) {
        $database = Get-MailboxDatabase -Server $env:COMPUTERNAME | Where-Object { [string]$_.DistinguishedName -eq $dn }
        if ($null -eq $database) {
            Stop-RemediateRefused ('no store with this DN on ' + $env:COMPUTERNAME) $dn
        }
        Clean-MailboxDatabase -Identity $database.Identity -Confirm:$false
    }
    return $null
}
"""

_CLEAN_2013 = r"""
function Invoke-RemediateOperation {
    param($Parameters)
    foreach ($dn in $Parameters.store_dns) {
        $database = Get-MailboxDatabase -Server $env:COMPUTERNAME | Where-Object { [string]$_.DistinguishedName -eq $dn }
        if ($null -eq $database) {
            Stop-RemediateRefused ('no store with this DN on ' + $env:COMPUTERNAME) $dn
        }
        foreach ($statistics in @(Get-MailboxStatistics -Database $database.Identity)) {
            Update-StoreMailboxState -Database $database.Identity -Identity $statistics.MailboxGuid -Confirm:$false
        }
    }
    return $null
}
"""

_PURGE = r"""
function Invoke-RemediateOperation {
    param($Parameters)
    $doomed = @()
    foreach ($guid in $Parameters.guids) {
        $statistics = Find-RemediateStatistics $guid
        if ($null -eq $statistics.DisconnectDate) {
            Stop-RemediateRefused ('mailbox ' + $guid + ' is not disconnected; run the cleanup agent first') $guid
        }
        $doomed += $statistics
    }
    foreach ($statistics in $doomed) {
        $state = [string]$statistics.DisconnectReason
        if (-not $state) {
            $state = 'Disabled'
        }
        Remove-StoreMailbox -Database $statistics.Database -Identity $statistics.MailboxGuid -MailboxState $state -Confirm:$false
    }
    return $null
}
"""

_DISABLE = r"""
function Invoke-RemediateOperation {
    param($Parameters)
    $users = @()
    foreach ($guid in $Parameters.users) {
        $user = Get-RemediateUserOrRefuse $guid
        $users += [string]$user.Properties['distinguishedname'][0]
    }
    foreach ($dn in $users) {
        Disable-Mailbox -Identity $dn -Confirm:$false
    }
    return $null
}
"""

_RECONNECT = r"""
function Invoke-RemediateOperation {
    param($Parameters)
    $work = @()
    for ($index = 0; $index -lt $Parameters.mailboxes.Length; $index++) {
        $statistics = Find-RemediateStatistics $Parameters.mailboxes[$index]
        $user = Get-RemediateUserOrRefuse $Parameters.users[$index]
        Assert-RemediateNotMailEnabled $user $Parameters.users[$index]
        $kind = [string]$Parameters.kinds[$index]
        if (@('user', 'shared', 'room', 'equipment') -notcontains $kind) {
            Stop-RemediateRefused "no Connect-Mailbox parameter set for the mailbox kind '$kind'" $Parameters.users[$index]
        }
        $work += @{ statistics = $statistics; user = [string]$user.Properties['distinguishedname'][0]; kind = $kind; archive = ([string]$Parameters.archives[$index] -eq '1') }
    }
    foreach ($item in $work) {
        # One parameter set per mailbox type (Connect-Mailbox.md): -Shared, -Room, -Equipment;
        # -Archive belongs to the User set.
        $connect = @{ Identity = $item.statistics.MailboxGuid; Database = $item.statistics.Database; User = $item.user; Confirm = $false }
        if ($item.kind -eq 'shared') { $connect.Shared = $true }
        if ($item.kind -eq 'room') { $connect.Room = $true }
        if ($item.kind -eq 'equipment') { $connect.Equipment = $true }
        if ($item.archive) { $connect.Archive = $true }
        Connect-Mailbox @connect
    }
    return $null
}
"""

_UPDATE_RECIPIENTS = r"""
function Invoke-RemediateOperation {
    param($Parameters)
    $users = @()
    foreach ($guid in $Parameters.users) {
        $user = Get-RemediateUserOrRefuse $guid
        $users += [string]$user.Properties['distinguishedname'][0]
    }
    foreach ($dn in $users) {
        Update-Recipient -Identity $dn -Confirm:$false
    }
    return $null
}
"""


# Export and import requests run in the Mailbox Replication Service; a batch is waited for until
# every request has finished, then each one's statistics become the record beside the export.
_REQUESTS = r"""
function Wait-RemediateRequests {
    param([string]$Batch, [string]$Kind, [int]$Count)
    while ($true) {
        if ($Kind -eq 'export') {
            $statistics = @(Get-MailboxExportRequest -BatchName $Batch | Get-MailboxExportRequestStatistics)
        }
        else {
            $statistics = @(Get-MailboxImportRequest -BatchName $Batch | Get-MailboxImportRequestStatistics)
        }
        $running = @($statistics | Where-Object { @('Completed', 'CompletedWithWarning', 'Failed') -notcontains [string]$_.Status })
        if ($statistics.Count -ge $Count -and $running.Count -eq 0) {
            return ,$statistics
        }
        Start-Sleep -Seconds 10
    }
}

function Get-RemediateRequestRecord {
    param($Statistics)
    return @{
        status = [string]$Statistics.Status
        succeeded = ([string]$Statistics.Status -eq 'Completed')
        bad_items = [long]$Statistics.BadItemsEncountered
    }
}

function Stop-RemediateIfRequestsFailed {
    param([string[]]$Failed, [string]$Kind)
    if ($Failed.Count -gt 0) {
        Stop-RemediateRefused ('the mailbox ' + $Kind + ' request for ' + $Failed[0] + ' on ' + $env:COMPUTERNAME + ' did not complete (' + $Failed.Count + ' in all); see Get-Mailbox' + $Kind + 'RequestStatistics -IncludeReport, fix the cause, remove the request and run again') $Failed[0]
    }
}
"""

_EXPORT = r"""
function Invoke-RemediateOperation {
    param($Parameters)
    Assert-RemediateExportDirectory $Parameters.directory
    $batch = 'remediate-' + [guid]::NewGuid().ToString()
    $sources = @{}
    foreach ($guid in $Parameters.guids) {
        $sources[([guid]$guid).ToString()] = Find-RemediateStatistics $guid
    }
    foreach ($guid in $sources.Keys) {
        Move-RemediateEarlierExport $Parameters.directory $guid
        New-MailboxExportRequest -Mailbox $guid -FilePath (Get-RemediateExportPath $Parameters.directory $guid '.pst') -BatchName $batch -BadItemLimit 0 -Confirm:$false | Out-Null
    }
    $made = @{}
    $failed = @()
    foreach ($statistics in (Wait-RemediateRequests $batch 'export' $sources.Count)) {
        $guid = [System.IO.Path]::GetFileNameWithoutExtension([string]$statistics.FilePath)
        $record = Get-RemediateRequestRecord $statistics
        $record['tool'] = 'New-MailboxExportRequest'
        $record['mailbox'] = $guid
        $record['source_items'] = [long]$sources[$guid].ItemCount
        $record['source_bytes'] = ConvertTo-RemediateBytes $sources[$guid].TotalItemSize
        $record['exported_items'] = [long]$statistics.ItemsTransferred
        $record['estimated_items'] = [long]$statistics.EstimatedTransferItemCount
        $record['file_bytes'] = Get-RemediateFileBytes (Get-RemediateExportPath $Parameters.directory $guid '.pst')
        Write-RemediateRecord (Get-RemediateExportPath $Parameters.directory $guid '.export.json') $record
        if (-not $record.succeeded) {
            $failed += $guid
        }
        $made[$guid] = Get-RemediateExportRecord $Parameters.directory $guid
    }
    Stop-RemediateIfRequestsFailed $failed 'Export'
    return $made
}
"""

_IMPORT = r"""
function Invoke-RemediateOperation {
    param($Parameters)
    $batch = 'remediate-' + [guid]::NewGuid().ToString()
    $pairs = @{}
    for ($index = 0; $index -lt $Parameters.mailboxes.Length; $index++) {
        [void](Find-RemediateStatistics $Parameters.mailboxes[$index])
        if (-not (Test-Path -LiteralPath $Parameters.locations[$index])) {
            Stop-RemediateRefused ('the export ' + $Parameters.locations[$index] + ' was not found from ' + $env:COMPUTERNAME) $Parameters.mailboxes[$index]
        }
        $pairs[$Parameters.locations[$index]] = @{ target = $Parameters.mailboxes[$index]; source = $Parameters.export_mailboxes[$index] }
    }
    foreach ($location in $pairs.Keys) {
        New-MailboxImportRequest -Mailbox $pairs[$location].target -FilePath $location -BatchName $batch -BadItemLimit 0 -ConflictResolutionOption KeepAll -Confirm:$false | Out-Null
    }
    $failed = @()
    foreach ($statistics in (Wait-RemediateRequests $batch 'import' $pairs.Count)) {
        $pair = $pairs[[string]$statistics.FilePath]
        $record = Get-RemediateRequestRecord $statistics
        $record['tool'] = 'New-MailboxImportRequest'
        $record['export'] = $pair.source
        $record['mailbox'] = $pair.target
        $record['imported_items'] = [long]$statistics.ItemsTransferred
        $name = '.import.' + ([guid]$pair.target).ToString() + '.json'
        Write-RemediateRecord (Get-RemediateExportPath (Split-Path ([string]$statistics.FilePath)) $pair.source $name) $record
        if (-not $record.succeeded) {
            $failed += $pair.target
        }
    }
    Stop-RemediateIfRequestsFailed $failed 'Import'
    return $null
}
"""


def _bodies(version: ExchangeVersion) -> dict[str, str]:
    old = version in (ExchangeVersion.E2007, ExchangeVersion.E2010)
    return {
        "describe": _DESCRIBE,
        "mailboxes": shared.DIRECTORY + _STATISTICS + _MAILBOXES,
        "service_states": shared.SERVICES,
        "set_services": shared.SET_SERVICES,
        "clean_database": _CLEAN_2007 if old else _CLEAN_2013,
        "purge": _STATISTICS + _PURGE,
        "disable": shared.DIRECTORY + _DISABLE,
        "reconnect": shared.DIRECTORY + _STATISTICS + _RECONNECT,
        "update_recipients": shared.DIRECTORY + _UPDATE_RECIPIENTS,
        "exports": shared.EXPORT_FILES + shared.EXPORTS,
        "export": shared.EXPORT_FILES + _STATISTICS + _REQUESTS + _EXPORT,
        "import": shared.EXPORT_FILES + _STATISTICS + _REQUESTS + _IMPORT,
    }


# Exchange 2007 has no mailbox export/import requests (2010 SP1 brought them); its
# Export-Mailbox -PSTFolderPath runs only on a 32-bit machine with Outlook, never on the server.
REFUSAL_2007 = (
    "{server} runs Exchange 2007, which cannot export or import mail through remediate: it has "
    "no New-MailboxExportRequest/New-MailboxImportRequest (Exchange 2010 SP1 brought them), and "
    "Export-Mailbox/Import-Mailbox -PSTFolderPath run only on a 32-bit machine with Outlook 2003 "
    "SP2 or later, not on the server. Export these mailboxes from such an admin workstation "
    "(Export-Mailbox -PSTFolderPath) and leave them out of this run, or move them to Exchange "
    "2010 SP1 or later first; then plan again"
)
UNAVAILABLE_2007 = frozenset({"export", "import"})

# Exchange 2010 before SP1 (14.0) has no mailbox export/import requests either. A server reports
# its build in AdminDisplayVersion ("Version 14.0 (Build 639.21)"), read by the describe script.
_ADMIN_DISPLAY_VERSION = re.compile(r"Version\s+(\d+)\.(\d+)")
REFUSAL_2010_RTM = (
    "{server} runs Exchange 2010 without a service pack ({build}), which has no "
    "New-MailboxExportRequest/New-MailboxImportRequest (Exchange 2010 SP1, 14.1, brought them). "
    "Install Exchange 2010 SP1 or later on it (SP3 is the last), or export these mailboxes "
    "another way and leave them out of this run; then plan again"
)


def lacks_mailbox_requests(admin_display_version: str) -> bool:
    """Whether a 2010 server of this AdminDisplayVersion predates SP1 (unreadable: not known)."""
    found = _ADMIN_DISPLAY_VERSION.search(admin_display_version)
    return found is not None and (int(found[1]), int(found[2])) < (14, 1)


def scripts(version: ExchangeVersion) -> dict[str, Script]:
    old = version in (ExchangeVersion.E2007, ExchangeVersion.E2010)
    unavailable = UNAVAILABLE_2007 if version is ExchangeVersion.E2007 else frozenset()
    dialect = Dialect.PS2 if old else Dialect.PS5
    setup = _SETUP_2007 if version is ExchangeVersion.E2007 else _SETUP
    return {
        operation: assemble(
            f"exchange{version.value}.{operation}",
            operation=operation,
            dialect=dialect,
            parameters=PARAMETERS[operation],
            setup=setup,
            body=body,
        )
        for operation, body in _bodies(version).items()
        if operation not in unavailable
    }
