"""Exchange 2007-2019/SE through the Exchange Management Shell cmdlets. 2007/2010 hosts run
Windows PowerShell 2.0 (one base64 argument per parameter); 2013 and later 3.0+ (base64 JSON)."""

from __future__ import annotations

from remediate.model import ExchangeVersion

from . import shared
from .assembly import Dialect, Script, assemble
from .parameters import PARAMETERS

# 2007 has only the local snap-in; 2010+ load the shell the way the Management Shell shortcut does.
_SETUP_2007 = "Add-PSSnapin Microsoft.Exchange.Management.PowerShell.Admin"
_SETUP = r"""
. (Join-Path $env:ExchangeInstallPath 'bin\RemoteExchange.ps1')
Connect-ExchangeServer -auto -ClientApplication:ManagementShell
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
    return @{ dc = [string]$server.CurrentDomainControllers[0]; stores = $stores }
}
"""

_STATISTICS = r"""
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
            $found += @{
                guid = $guid
                store_dn = [string]$database.DistinguishedName
                legacy_dn = [string]$statistics.LegacyDN
                display_name = [string]$statistics.DisplayName
                disconnected_at = $absent
                item_ids = Get-RemediateItemIds $guid
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
        $work += @{ statistics = $statistics; user = [string]$user.Properties['distinguishedname'][0] }
    }
    foreach ($item in $work) {
        Connect-Mailbox -Identity $item.statistics.MailboxGuid -Database $item.statistics.Database -User $item.user -Confirm:$false
    }
    return $null
}
"""


_WAIT_REQUESTS = r"""
function Wait-RemediateRequests {
    param([string]$Batch, [string]$Kind)
    while ($true) {
        if ($Kind -eq 'export') {
            $requests = @(Get-MailboxExportRequest -BatchName $Batch)
        }
        else {
            $requests = @(Get-MailboxImportRequest -BatchName $Batch)
        }
        $failed = @($requests | Where-Object { [string]$_.Status -eq 'Failed' })
        if ($failed.Count -gt 0) {
            throw ('mailbox ' + $Kind + ' request failed for ' + $failed[0].Mailbox)
        }
        if (@($requests | Where-Object { [string]$_.Status -ne 'Completed' }).Count -eq 0) {
            return
        }
        Start-Sleep -Seconds 10
    }
}
"""

_EXPORT = r"""
function Invoke-RemediateOperation {
    param($Parameters)
    $batch = 'remediate-' + [guid]::NewGuid().ToString()
    foreach ($guid in $Parameters.guids) {
        [void](Find-RemediateStatistics $guid)
    }
    foreach ($guid in $Parameters.guids) {
        $path = Join-Path $Parameters.directory ($guid + '.pst')
        New-MailboxExportRequest -Mailbox $guid -FilePath $path -BatchName $batch -Confirm:$false | Out-Null
    }
    Wait-RemediateRequests $batch 'export'
    $made = @{}
    foreach ($guid in $Parameters.guids) {
        $path = Get-RemediateExportFile $Parameters.directory $guid
        $made[$guid] = @{ location = $path; item_ids = (Get-RemediateExportItemIds $path) }
    }
    return $made
}
"""

_IMPORT = r"""
function Invoke-RemediateOperation {
    param($Parameters)
    $batch = 'remediate-' + [guid]::NewGuid().ToString()
    for ($index = 0; $index -lt $Parameters.mailboxes.Length; $index++) {
        [void](Find-RemediateStatistics $Parameters.mailboxes[$index])
        if (-not (Test-Path -LiteralPath $Parameters.locations[$index])) {
            Stop-RemediateRefused ('the export ' + $Parameters.locations[$index] + ' was not found') $Parameters.mailboxes[$index]
        }
    }
    for ($index = 0; $index -lt $Parameters.mailboxes.Length; $index++) {
        New-MailboxImportRequest -Mailbox $Parameters.mailboxes[$index] -FilePath $Parameters.locations[$index] -BatchName $batch -ConflictResolutionOption KeepAll -Confirm:$false | Out-Null
    }
    Wait-RemediateRequests $batch 'import'
    return $null
}
"""



def _bodies(version: ExchangeVersion) -> dict[str, str]:
    old = version in (ExchangeVersion.E2007, ExchangeVersion.E2010)
    return {
        "describe": _DESCRIBE,
        "mailboxes": shared.DIRECTORY + shared.ITEMS + _STATISTICS + _MAILBOXES,
        "service_states": shared.SERVICES,
        "set_services": shared.SET_SERVICES,
        "clean_database": _CLEAN_2007 if old else _CLEAN_2013,
        "purge": _STATISTICS + _PURGE,
        "disable": shared.DIRECTORY + _DISABLE,
        "reconnect": shared.DIRECTORY + _STATISTICS + _RECONNECT,
        "exports": shared.EXPORT_FILES + shared.ITEMS + shared.EXPORTS,
        "export": shared.EXPORT_FILES + shared.ITEMS + _STATISTICS + _WAIT_REQUESTS + _EXPORT,
        "import": _STATISTICS + _WAIT_REQUESTS + _IMPORT,
    }


def scripts(version: ExchangeVersion) -> dict[str, Script]:
    old = version in (ExchangeVersion.E2007, ExchangeVersion.E2010)
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
    }
