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

# RBAC puts in a session only the cmdlets the account's roles grant: without the Mailbox Import
# Export role (assigned to nobody by default) New-MailboxExportRequest is not there (can_export).
# Get-MailboxDatabase -Server lists every database with a copy on the server, a DAG's passive
# copies too; its Server property is the server hosting the database (Get-MailboxDatabase.md),
# so a database is this server's store only where that is this server (its mailboxes are read
# where the copy is active: Get-MailboxStatistics -Server without -IncludePassive). Server is an
# ADObjectId (its Name) in a local shell and a string (a name or FQDN) through 2010+ remoting.
# Recovery marks a recovery database.
# With -Status, Get-ExchangeServer adds "runtime domain controller usage" (Get-ExchangeServer.md):
# CurrentDomainControllers, "the list of domain controllers that this server can use for
# Directory Service Access", and CurrentGlobalCatalogs, "the list of global catalogs that the
# server uses" (ExchangeServer members, ff324326(v=exchg.140)): the replication waits watch them.
_DESCRIBE = r"""
function Invoke-RemediateOperation {
    param($Parameters)
    $server = Get-ExchangeServer -Identity $env:COMPUTERNAME -Status
    $stores = @()
    foreach ($database in @(Get-MailboxDatabase -Server $env:COMPUTERNAME)) {
        $holder = [string]$database.Server.Name
        if (-not $holder) {
            $holder = ([string]$database.Server).Split('.')[0]
        }
        if ($holder -and $holder -ne $env:COMPUTERNAME) {
            continue
        }
        $group = ''
        if ($database.StorageGroupName) {
            $group = [string]$database.StorageGroupName
        }
        $stores += @{ name = [string]$database.Name; storage_group = $group; dn = [string]$database.DistinguishedName; recovery = [bool]$database.Recovery }
    }
    $dcs = @($server.CurrentDomainControllers | ForEach-Object { [string]$_ })
    $gcs = @($server.CurrentGlobalCatalogs | ForEach-Object { [string]$_ })
    return @{ dc = [string]$server.CurrentDomainControllers[0]; dcs = $dcs; gcs = $gcs; stores = $stores; admin_display_version = [string]$server.AdminDisplayVersion; roles = [string]$server.ServerRole; site = [string]$server.Site; can_export = ($null -ne (Get-Command New-MailboxExportRequest -ErrorAction SilentlyContinue)) }
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

# One enumeration of the server's mailboxes (Get-MailboxStatistics -Server) and one of its
# databases per script, each indexed; never one per target. -Server lists "all the mailboxes on
# all the databases, including recovery databases" (Get-MailboxStatistics.md), and from active
# database copies only (without -IncludePassive, which is not used): a database replicated to
# other servers of a DAG is read once, where it is active. A GUID is still not unique: a recovery
# database holds restored copies (Get-MailboxDatabase's Recovery property), and a move leaves a
# soft-deleted copy in its source database (DisconnectReason SoftDeleted, Remove-StoreMailbox.md),
# which Connect-Mailbox does not take (New-MailboxRestoreRequest reads it). A lookup names the
# database the plan saw the mailbox in (its DN; '': the live one wherever it is) and returns only
# a live mailbox.
function Get-RemediateStatistics {
    return ,@(Get-MailboxStatistics -Server $env:COMPUTERNAME)
}

function Get-RemediateStatisticsIndex {
    param($All)
    $index = @{}
    foreach ($statistics in $All) {
        $key = ([guid]$statistics.MailboxGuid).ToString()
        if ($index.ContainsKey($key)) {
            $index[$key] += ,$statistics
        }
        else {
            $index[$key] = @($statistics)
        }
    }
    return $index
}

function Get-RemediateCopyKind {
    param($Statistics, $Database)
    if ($Database.Recovery) {
        return 'recovery'
    }
    if ([string]$Statistics.DisconnectReason -eq 'SoftDeleted') {
        return 'soft-deleted'
    }
    return 'live'
}

# The live mailbox $Guid (in the database $Store where given), or why there is none.
function Select-RemediateStatistics {
    param($Index, $Databases, [string]$Guid, [string]$Store)
    $key = ([guid]$Guid).ToString()
    if (-not $Index.ContainsKey($key)) {
        return ('no mailbox ' + $key + ' on ' + $env:COMPUTERNAME)
    }
    $live = @()
    $copies = @()
    foreach ($statistics in @($Index[$key])) {
        $database = Find-RemediateDatabase $Databases $statistics.Database $key
        if ($Store -and [string]$database.DistinguishedName -ne $Store) {
            continue
        }
        $kind = Get-RemediateCopyKind $statistics $database
        if ($kind -eq 'live') {
            $live += ,$statistics
        }
        else {
            $copies += ([string]$database.Name + ' (' + $kind + ')')
        }
    }
    if ($live.Count -eq 1) {
        return $live[0]
    }
    if ($live.Count -gt 1) {
        return ('mailbox ' + $key + ' is live in more than one database on ' + $env:COMPUTERNAME + ': remediate will not guess which; plan again')
    }
    if ($copies.Count -gt 0) {
        return ('mailbox ' + $key + ' on ' + $env:COMPUTERNAME + ' is there only as a copy (' + ($copies -join '; ') + '), which is never reconnected, exported or purged')
    }
    return ('mailbox ' + $key + ' is no longer in the database ' + $Store + ' on ' + $env:COMPUTERNAME + ' (moved since the plan?); plan again')
}

function Find-RemediateStatistics {
    param($Index, $Databases, [string]$Guid, [string]$Store)
    $found = Select-RemediateStatistics $Index $Databases $Guid $Store
    if ($found -is [string]) {
        Stop-RemediateRefused $found $Guid
    }
    return $found
}

# Databases by every name a statistics object may carry for its database (deserialized through
# the 2010+ shell's remoting it is a string; on 2007 an ADObjectId): Name, Identity, DN, GUID.
function Get-RemediateDatabaseIndex {
    $index = @{}
    foreach ($database in @(Get-MailboxDatabase -Server $env:COMPUTERNAME)) {
        foreach ($name in @($database.Name, $database.Identity, $database.DistinguishedName, $database.Guid)) {
            if ($null -ne $name -and [string]$name) {
                $index[[string]$name] = $database
            }
        }
    }
    return $index
}

function Find-RemediateDatabase {
    param($Index, $Name, [string]$Target)
    if ($null -eq $Name -or -not $Index.ContainsKey([string]$Name)) {
        Stop-RemediateRefused ('no database ' + [string]$Name + ' on ' + $env:COMPUTERNAME) $Target
    }
    return $Index[[string]$Name]
}
"""

_MAILBOXES = r"""
function Invoke-RemediateOperation {
    param($Parameters)
    $wanted = @{}
    foreach ($guid in $Parameters.guids) {
        $wanted[([guid]$guid).ToString()] = $true
    }
    $databases = Get-RemediateDatabaseIndex
    $found = @()
    foreach ($statistics in (Get-RemediateStatistics)) {
        $guid = $statistics.MailboxGuid.ToString()
        if ($Parameters.scope -eq 'all' -or $wanted.ContainsKey($guid)) {
            $database = Find-RemediateDatabase $databases $statistics.Database $guid
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
                copy = Get-RemediateCopyKind $statistics $database
            }
        }
    }
    return ,$found
}
"""

_CLEAN_2007 = r"""
function Invoke-RemediateOperation {
    param($Parameters)
    $databases = Get-RemediateDatabaseIndex
    $work = @()
    foreach ($dn in $Parameters.store_dns) {
        $work += Find-RemediateDatabase $databases $dn $dn
    }
    foreach ($database in $work) {
        Clean-MailboxDatabase -Identity $database.Identity -Confirm:$false
    }
    return $null
}
"""

_CLEAN_2013 = r"""
function Invoke-RemediateOperation {
    param($Parameters)
    $databases = Get-RemediateDatabaseIndex
    $wanted = @{}
    foreach ($dn in $Parameters.store_dns) {
        $database = Find-RemediateDatabase $databases $dn $dn
        $wanted[[string]$database.DistinguishedName] = $database
    }
    $work = @()
    foreach ($statistics in (Get-RemediateStatistics)) {
        $database = Find-RemediateDatabase $databases $statistics.Database ([string]$statistics.MailboxGuid)
        if ($wanted.ContainsKey([string]$database.DistinguishedName)) {
            $work += @{ database = $database; guid = $statistics.MailboxGuid }
        }
    }
    foreach ($item in $work) {
        Update-StoreMailboxState -Database $item.database.Identity -Identity $item.guid -Confirm:$false
    }
    return $null
}
"""


# Exchange 2010 and later purge a disconnected or soft-deleted mailbox with Remove-StoreMailbox
# (-MailboxState: the DisconnectReason the store reports). Exchange 2007 has no
# Remove-StoreMailbox; its Remove-Mailbox purges a store mailbox by database and mailbox GUID
# (Exchange 2007 reference, Remove-Mailbox, the StoreMailboxIdentity parameter set).
_REMOVE_STORE_MAILBOX = r"""
function Remove-RemediateStoreMailbox {
    param($Statistics)
    $state = [string]$Statistics.DisconnectReason
    if (-not $state) {
        $state = 'Disabled'
    }
    Remove-StoreMailbox -Database $Statistics.Database -Identity $Statistics.MailboxGuid -MailboxState $state -Confirm:$false
}
"""

_REMOVE_STORE_MAILBOX_2007 = r"""
function Remove-RemediateStoreMailbox {
    param($Statistics)
    Remove-Mailbox -Database $Statistics.Database -StoreMailboxIdentity $Statistics.MailboxGuid -Confirm:$false
}
"""

_PURGE = r"""
function Invoke-RemediateOperation {
    param($Parameters)
    $stored = Get-RemediateStatisticsIndex (Get-RemediateStatistics)
    $databases = Get-RemediateDatabaseIndex
    $doomed = @()
    for ($index = 0; $index -lt $Parameters.guids.Length; $index++) {
        $guid = $Parameters.guids[$index]
        $statistics = Find-RemediateStatistics $stored $databases $guid $Parameters.stores[$index]
        if ($null -eq $statistics.DisconnectDate) {
            Stop-RemediateRefused ('mailbox ' + $guid + ' is not disconnected; run the cleanup agent first') $guid
        }
        $doomed += $statistics
    }
    foreach ($statistics in $doomed) {
        Remove-RemediateStoreMailbox $statistics
    }
    return $null
}
"""

# Users are named by the DN the adapter read from AD (ports.ExchangeCatalog), never by a GUID: a
# GUID given to -Identity may also match another recipient's mailbox GUID (an upgraded 5.5
# mailbox's is its first owner's objectGUID).
_DISABLE = r"""
function Invoke-RemediateOperation {
    param($Parameters)
    foreach ($dn in $Parameters.user_dns) {
        Disable-Mailbox -Identity $dn -Confirm:$false
    }
    return $null
}
"""

# One Connect-Mailbox parameter set per mailbox type (Connect-Mailbox.md; Exchange 2007:
# aa997878): -Shared, -Room, -Equipment, or the User set, which on 2010 and later also takes
# -Archive (the user's archive is connected with the mailbox). Written out per set, not splatted,
# so each call names its parameters for the reader (and the documentation check).
_CONNECT = "Connect-Mailbox -Identity $item.statistics.MailboxGuid -Database $item.statistics.Database -User $item.user"

_RECONNECT = r"""
function Invoke-RemediateOperation {
    param($Parameters)
    $stored = Get-RemediateStatisticsIndex (Get-RemediateStatistics)
    $databases = Get-RemediateDatabaseIndex
    $work = @()
    for ($index = 0; $index -lt $Parameters.mailboxes.Length; $index++) {
        $statistics = Find-RemediateStatistics $stored $databases $Parameters.mailboxes[$index] $Parameters.stores[$index]
        $kind = [string]$Parameters.kinds[$index]
        if (@('user', 'shared', 'room', 'equipment') -notcontains $kind) {
            Stop-RemediateRefused "no Connect-Mailbox parameter set for the mailbox kind '$kind'" $Parameters.users[$index]
        }
        $archive = ([string]$Parameters.archives[$index] -eq '1')
        if ($archive -and ARCHIVE_REFUSED) {
            Stop-RemediateRefused "Connect-Mailbox -Archive takes only a user mailbox, on Exchange 2010 and later" $Parameters.users[$index]
        }
        $work += @{ statistics = $statistics; user = [string]$Parameters.user_dns[$index]; kind = $kind; archive = $archive }
    }
    foreach ($item in $work) {
        if ($item.kind -eq 'shared') {
            CONNECT -Shared -Confirm:$false
        } elseif ($item.kind -eq 'room') {
            CONNECT -Room -Confirm:$false
        } elseif ($item.kind -eq 'equipment') {
            CONNECT -Equipment -Confirm:$false
        } ARCHIVE_BRANCH else {
            CONNECT -Confirm:$false
        }
    }
    return $null
}
""".replace("CONNECT", _CONNECT)

_ARCHIVE_BRANCH = (
    "elseif ($item.archive) {\n            " + _CONNECT + " -Archive -Confirm:$false\n        }"
)


def _reconnect(version: ExchangeVersion) -> str:
    """The reconnect script; -Archive only where Connect-Mailbox has it (2010 and later)."""
    if version is ExchangeVersion.E2007:
        return _RECONNECT.replace("ARCHIVE_REFUSED", "$true").replace(" ARCHIVE_BRANCH", "")
    return _RECONNECT.replace("ARCHIVE_REFUSED", "$kind -ne 'user'").replace(
        " ARCHIVE_BRANCH", " " + _ARCHIVE_BRANCH
    )


_UPDATE_RECIPIENTS = r"""
function Invoke-RemediateOperation {
    param($Parameters)
    foreach ($dn in $Parameters.user_dns) {
        Update-Recipient -Identity $dn -Confirm:$false
    }
    return $null
}
"""


# Connect-Mailbox -ValidateOnly "evaluate[s] the conditions and requirements necessary to perform
# the operation" and changes nothing (its parameter set takes -Identity and -Database, no -User):
# asked before anyone is stripped, each failure is what stops that mailbox.
_VALIDATE_RECONNECT = r"""
function Invoke-RemediateOperation {
    param($Parameters)
    $stored = Get-RemediateStatisticsIndex (Get-RemediateStatistics)
    $databases = Get-RemediateDatabaseIndex
    $problems = @{}
    $work = @()
    for ($index = 0; $index -lt $Parameters.mailboxes.Length; $index++) {
        $key = ([guid]$Parameters.mailboxes[$index]).ToString()
        $found = Select-RemediateStatistics $stored $databases $key $Parameters.stores[$index]
        if ($found -is [string]) {
            $problems[$key] = $found
        }
        else {
            $work += @{ guid = $key; statistics = $found }
        }
    }
    foreach ($item in $work) {
        try {
            Connect-Mailbox -Identity $item.statistics.MailboxGuid -Database $item.statistics.Database -ValidateOnly -Confirm:$false | Out-Null
        }
        catch {
            $problems[$item.guid] = [string]$_.Exception.Message
        }
    }
    return $problems
}
"""


# Export and import requests run in the Mailbox Replication Service. Each is named after its
# mailbox ("remediate-<guid>", unique per mailbox as -Name must be) in one batch per kind, so a
# run interrupted while they run finds them again by name instead of queuing duplicates; a failed
# one is removed before it is made again. The service keeps at most ten request names per
# mailbox, completed ones included, so each completed request is removed once its statistics are
# recorded beside the export (New-MailboxExportRequest, Remove-MailboxExportRequest). The wait
# has a deadline of its own, inside the runner's: past it the requests keep running and the
# script answers "transient", so the engine's retry waits for them again by name.
_REQUESTS = r"""
function Get-RemediateRequestIndex {
    param([string]$Kind)
    if ($Kind -eq 'export') {
        $all = @(Get-MailboxExportRequest -BatchName 'remediate-export' | Get-MailboxExportRequestStatistics)
    }
    else {
        $all = @(Get-MailboxImportRequest -BatchName 'remediate-import' | Get-MailboxImportRequestStatistics)
    }
    $index = @{}
    foreach ($statistics in $all) {
        $index[[string]$statistics.Name] = $statistics
    }
    return $index
}

function Test-RemediateRequestDone {
    param($Statistics)
    return (@('Completed', 'CompletedWithWarning', 'Failed') -contains [string]$Statistics.Status)
}

function Wait-RemediateRequests {
    param([string]$Kind, [string[]]$Names, [int]$WaitSeconds)
    $deadline = (Get-Date).AddSeconds($WaitSeconds)
    while ($true) {
        $index = Get-RemediateRequestIndex $Kind
        $running = @($Names | Where-Object { -not $index.ContainsKey($_) -or -not (Test-RemediateRequestDone $index[$_]) })
        if ($running.Count -eq 0) {
            return $index
        }
        if ((Get-Date) -gt $deadline) {
            throw ('the mailbox ' + $Kind + ' requests on ' + $env:COMPUTERNAME + ' timed out: ' + $running.Count + ' still running after ' + $WaitSeconds + ' s (they keep running; the next attempt waits for them by name, ' + $running[0] + ' first)')
        }
        Start-Sleep -Seconds 10
    }
}

function Remove-RemediateRequest {
    param($Statistics, [string]$Kind)
    if ($Kind -eq 'export') {
        Remove-MailboxExportRequest -Identity $Statistics.Identity -Confirm:$false
    }
    else {
        Remove-MailboxImportRequest -Identity $Statistics.Identity -Confirm:$false
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
        Stop-RemediateRefused ('the mailbox ' + $Kind + ' request for ' + $Failed[0] + ' on ' + $env:COMPUTERNAME + ' did not complete (' + $Failed.Count + ' in all); see Get-Mailbox' + $Kind + 'RequestStatistics -IncludeReport, fix the cause and run again (the failed request is replaced then)') $Failed[0]
    }
}
"""

# -Mailbox takes a mailbox's LegacyExchangeDN, one of the identities New-MailboxExportRequest and
# New-MailboxImportRequest document (a store mailbox's GUID is not among them).
_EXPORT = r"""
function Invoke-RemediateOperation {
    param($Parameters)
    $stored = Get-RemediateStatisticsIndex (Get-RemediateStatistics)
    $databases = Get-RemediateDatabaseIndex
    Assert-RemediateExportDirectory $Parameters.directory
    $sources = @{}
    for ($index = 0; $index -lt $Parameters.guids.Length; $index++) {
        $guid = $Parameters.guids[$index]
        $sources[([guid]$guid).ToString()] = Find-RemediateStatistics $stored $databases $guid $Parameters.stores[$index]
    }
    $earlier = Get-RemediateRequestIndex 'export'
    $names = @()
    foreach ($guid in $sources.Keys) {
        $name = 'remediate-' + $guid
        $names += $name
        if ($earlier.ContainsKey($name) -and [string]$earlier[$name].Status -eq 'Failed') {
            Remove-RemediateRequest $earlier[$name] 'export'
        }
        elseif ($earlier.ContainsKey($name)) {
            continue
        }
        Move-RemediateEarlierExport $Parameters.directory $guid
        New-MailboxExportRequest -Mailbox ([string]$sources[$guid].LegacyDN) -Name $name -FilePath (Get-RemediateExportPath $Parameters.directory $guid '.pst') -BatchName 'remediate-export' -BadItemLimit 0 -Confirm:$false | Out-Null
    }
    $index = Wait-RemediateRequests 'export' $names ([int]$Parameters.wait_s)
    $made = @{}
    $failed = @()
    $done = @()
    foreach ($guid in $sources.Keys) {
        $statistics = $index['remediate-' + $guid]
        $record = Get-RemediateRequestRecord $statistics
        $record['tool'] = 'New-MailboxExportRequest'
        $record['mailbox'] = $guid
        $record['source_items'] = [long]$sources[$guid].ItemCount
        $record['source_bytes'] = ConvertTo-RemediateBytes $sources[$guid].TotalItemSize
        $record['exported_items'] = [long]$statistics.ItemsTransferred
        $record['estimated_items'] = [long]$statistics.EstimatedTransferItemCount
        $record['file_bytes'] = Get-RemediateFileBytes (Get-RemediateExportPath $Parameters.directory $guid '.pst')
        Write-RemediateRecord (Get-RemediateExportPath $Parameters.directory $guid '.export.json') $record
        if ($record.succeeded) {
            $done += $statistics
        }
        else {
            $failed += $guid
        }
        $made[$guid] = Get-RemediateExportRecord $Parameters.directory $guid
    }
    foreach ($statistics in $done) {
        Remove-RemediateRequest $statistics 'export'
    }
    Stop-RemediateIfRequestsFailed $failed 'Export'
    return $made
}
"""

_IMPORT = r"""
function Invoke-RemediateOperation {
    param($Parameters)
    $stored = Get-RemediateStatisticsIndex (Get-RemediateStatistics)
    $databases = Get-RemediateDatabaseIndex
    $pairs = @{}
    for ($index = 0; $index -lt $Parameters.mailboxes.Length; $index++) {
        $target = Find-RemediateStatistics $stored $databases $Parameters.mailboxes[$index] $Parameters.stores[$index]
        if (-not (Test-Path -LiteralPath $Parameters.locations[$index])) {
            Stop-RemediateRefused ('the export ' + $Parameters.locations[$index] + ' was not found from ' + $env:COMPUTERNAME) $Parameters.mailboxes[$index]
        }
        $name = 'remediate-' + ([guid]$Parameters.export_mailboxes[$index]).ToString()
        $pairs[$name] = @{ target = $Parameters.mailboxes[$index]; legacy_dn = [string]$target.LegacyDN; source = $Parameters.export_mailboxes[$index]; location = $Parameters.locations[$index] }
    }
    $earlier = Get-RemediateRequestIndex 'import'
    foreach ($name in $pairs.Keys) {
        if ($earlier.ContainsKey($name) -and [string]$earlier[$name].Status -eq 'Failed') {
            Remove-RemediateRequest $earlier[$name] 'import'
        }
        elseif ($earlier.ContainsKey($name)) {
            continue
        }
        New-MailboxImportRequest -Mailbox $pairs[$name].legacy_dn -Name $name -FilePath $pairs[$name].location -BatchName 'remediate-import' -BadItemLimit 0 -ConflictResolutionOption KeepAll -Confirm:$false | Out-Null
    }
    $index = Wait-RemediateRequests 'import' @($pairs.Keys) ([int]$Parameters.wait_s)
    $failed = @()
    $done = @()
    foreach ($name in $pairs.Keys) {
        $pair = $pairs[$name]
        $statistics = $index[$name]
        $record = Get-RemediateRequestRecord $statistics
        $record['tool'] = 'New-MailboxImportRequest'
        $record['export'] = $pair.source
        $record['mailbox'] = $pair.target
        $record['imported_items'] = [long]$statistics.ItemsTransferred
        $suffix = '.import.' + ([guid]$pair.target).ToString() + '.json'
        Write-RemediateRecord (Get-RemediateExportPath (Split-Path $pair.location) $pair.source $suffix) $record
        if ($record.succeeded) {
            $done += $statistics
        }
        else {
            $failed += $pair.target
        }
    }
    foreach ($statistics in $done) {
        Remove-RemediateRequest $statistics 'import'
    }
    Stop-RemediateIfRequestsFailed $failed 'Import'
    return $null
}
"""


def _bodies(version: ExchangeVersion) -> dict[str, str]:
    old = version in (ExchangeVersion.E2007, ExchangeVersion.E2010)
    return {
        "describe": _DESCRIBE,
        "mailboxes": _STATISTICS + _MAILBOXES,
        "service_states": shared.SERVICES,
        "running_dependents": shared.DEPENDENTS,
        "set_services": shared.SET_SERVICES,
        "clean_database": _STATISTICS + (_CLEAN_2007 if old else _CLEAN_2013),
        "purge": _STATISTICS
        + (
            _REMOVE_STORE_MAILBOX_2007
            if version is ExchangeVersion.E2007
            else _REMOVE_STORE_MAILBOX
        )
        + _PURGE,
        "disable": _DISABLE,
        "reconnect": _STATISTICS + _reconnect(version),
        "validate_reconnect": _STATISTICS + _VALIDATE_RECONNECT,
        "update_recipients": _UPDATE_RECIPIENTS,
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


def _predates(admin_display_version: str, build: tuple[int, int]) -> bool:
    """Whether a server of this AdminDisplayVersion is older than ``build`` (major, minor);
    unreadable: not known, so not older."""
    found = _ADMIN_DISPLAY_VERSION.search(admin_display_version)
    return found is not None and (int(found[1]), int(found[2])) < build


def lacks_mailbox_requests(admin_display_version: str) -> bool:
    """Whether a 2010 server of this AdminDisplayVersion predates SP1 (14.1)."""
    return _predates(admin_display_version, (14, 1))


def lacks_update_recipient(admin_display_version: str) -> bool:
    """Whether a 2007 server of this AdminDisplayVersion predates SP1 (8.1): Update-Recipient
    "Applies to: Exchange Server 2007 SP1, Exchange Server 2007 SP2, Exchange Server 2007 SP3"
    (bb738148), so Exchange 2007 RTM (8.0) does not have it."""
    return _predates(admin_display_version, (8, 1))


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
