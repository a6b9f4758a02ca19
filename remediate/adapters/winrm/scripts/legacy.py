"""Exchange 2000/2003: WMI ``root\\MicrosoftExchangeV2`` (2003 only has ``Exchange_Mailbox``),
ADSI for the directory, ExMerge in batch mode with a generated ini for mail. PowerShell 2.0."""

from __future__ import annotations

from remediate.model import ExchangeVersion

from . import shared
from .assembly import Dialect, Script, assemble
from .parameters import PARAMETERS

_WMI = r"""
function Get-RemediateStoreMailboxes {
    $all = Get-WmiObject -Namespace 'root\MicrosoftExchangeV2' -Class 'Exchange_Mailbox'
    return @($all | Where-Object { $_.ServerName -eq $env:COMPUTERNAME })
}

function Find-RemediateStoreMailbox {
    param([string]$Guid)
    $wanted = [guid]$Guid
    foreach ($mailbox in (Get-RemediateStoreMailboxes)) {
        if ([guid]$mailbox.MailboxGUID -eq $wanted) {
            return $mailbox
        }
    }
    Stop-RemediateRefused ('no mailbox ' + $Guid + ' on ' + $env:COMPUTERNAME) $Guid
}
"""

_DESCRIBE = r"""
function Invoke-RemediateOperation {
    param($Parameters)
    $rootDse = [ADSI]'LDAP://RootDSE'
    $searcher = New-Object System.DirectoryServices.DirectorySearcher
    $searcher.SearchRoot = [ADSI]('LDAP://' + $rootDse.configurationNamingContext)
    $searcher.Filter = '(objectClass=msExchPrivateMDB)'
    $stores = @()
    foreach ($entry in $searcher.FindAll()) {
        $owner = [string]$entry.Properties['msexchowningserver'][0]
        if ($owner.StartsWith('CN=' + $env:COMPUTERNAME + ',')) {
            $group = ([ADSI]$entry.GetDirectoryEntry().Parent).cn
            $stores += @{ name = [string]$entry.Properties['cn'][0]; storage_group = [string]$group; dn = [string]$entry.Properties['distinguishedname'][0] }
        }
    }
    $dc = Get-WmiObject -Namespace 'root\MicrosoftExchangeV2' -Class 'Exchange_DSAccessDC' | Where-Object { $_.Type -eq 1 -and $_.IsUp } | Select-Object -First 1
    return @{ dc = [string]$dc.Name; stores = $stores }
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
    foreach ($mailbox in (Get-RemediateStoreMailboxes)) {
        $guid = ([guid]$mailbox.MailboxGUID).ToString()
        if ($Parameters.scope -eq 'all' -or $wanted.ContainsKey($guid)) {
            $absent = $null
            if ($mailbox.DateDiscoveredAbsentInDS) {
                $when = [System.Management.ManagementDateTimeConverter]::ToDateTime($mailbox.DateDiscoveredAbsentInDS)
                $absent = $when.ToUniversalTime().ToString('yyyy-MM-ddTHH:mm:ssZ')
            }
            $found += @{
                guid = $guid
                store_name = [string]$mailbox.StoreName
                storage_group = [string]$mailbox.StorageGroupName
                legacy_dn = [string]$mailbox.LegacyDN
                display_name = [string]$mailbox.MailboxDisplayName
                disconnected_at = $absent
                item_ids = Get-RemediateItemIds $guid
                owner = Get-RemediateOwner $guid
            }
        }
    }
    return ,$found
}
"""

_PURGE = r"""
function Invoke-RemediateOperation {
    param($Parameters)
    $doomed = @()
    foreach ($guid in $Parameters.guids) {
        $mailbox = Find-RemediateStoreMailbox $guid
        if (-not $mailbox.DateDiscoveredAbsentInDS) {
            Stop-RemediateRefused ('mailbox ' + $guid + ' is not disconnected; run the cleanup agent first') $guid
        }
        $doomed += $mailbox
    }
    foreach ($mailbox in $doomed) {
        [void]$mailbox.Purge()
    }
    return $null
}
"""

_RECONNECT = r"""
function Invoke-RemediateOperation {
    param($Parameters)
    $work = @()
    for ($index = 0; $index -lt $Parameters.mailboxes.Length; $index++) {
        $mailbox = Find-RemediateStoreMailbox $Parameters.mailboxes[$index]
        $user = Get-RemediateUserOrRefuse $Parameters.users[$index]
        Assert-RemediateNotMailEnabled $user $Parameters.users[$index]
        $work += @{ mailbox = $mailbox; logon = [string]$user.Properties['samaccountname'][0] }
    }
    foreach ($item in $work) {
        [void]$item.mailbox.Reconnect($item.logon)
    }
    return $null
}
"""

_DISABLE = r"""
function Invoke-RemediateOperation {
    param($Parameters)
    $names = @('homeMDB', 'homeMTA', 'msExchHomeServerName', 'mailNickname', 'legacyExchangeDN', 'msExchMailboxGuid', 'proxyAddresses', 'mail', 'msExchMailboxSecurityDescriptor', 'showInAddressBook')
    $users = @()
    foreach ($guid in $Parameters.users) {
        $user = Get-RemediateUserOrRefuse $guid
        $users += $user.GetDirectoryEntry()
    }
    foreach ($entry in $users) {
        foreach ($name in $names) {
            $entry.Properties[$name].Clear()
        }
        $entry.CommitChanges()
    }
    return $null
}
"""


# ExMerge: one batch run per call. The ini is written from the payload's values (never from
# script text); the mailbox list file holds one legacyExchangeDN per line.
_EXMERGE = r"""
function Invoke-RemediateExMerge {
    param([int]$Action, [string]$Directory, [string[]]$LegacyDns)
    $work = Join-Path $env:TEMP ('remediate-' + [guid]::NewGuid().ToString())
    [void](New-Item -ItemType Directory -Path $work)
    $list = Join-Path $work 'mailboxes.txt'
    [System.IO.File]::WriteAllLines($list, $LegacyDns)
    $ini = @(
        '[EXMERGE]',
        ('MergeAction=' + $Action),
        ('SourceServerName=' + $env:COMPUTERNAME),
        ('DestServerName=' + $env:COMPUTERNAME),
        ('DataDirectoryName=' + $Directory),
        ('FileContainingListOfMailboxes=' + $list),
        'LoggingLevel=1'
    )
    $iniPath = Join-Path $work 'exmerge.ini'
    [System.IO.File]::WriteAllLines($iniPath, $ini)
    $exchsrvr = (Get-ItemProperty 'HKLM:\SOFTWARE\Microsoft\Exchange\Setup').Services
    $exmerge = Join-Path $exchsrvr 'bin\exmerge.exe'
    & $exmerge '-B' '-F' $iniPath '-D' | Out-Null
    $log = Get-Content -LiteralPath (Join-Path (Split-Path $exmerge) 'exmerge.log')
    if (-not ($log -match 'Successfully completed')) {
        throw ('ExMerge did not complete: ' + ($log[-5..-1] -join ' '))
    }
}
"""

_EXPORT = r"""
function Invoke-RemediateOperation {
    param($Parameters)
    $legacyDns = @()
    foreach ($guid in $Parameters.guids) {
        $legacyDns += [string](Find-RemediateStoreMailbox $guid).LegacyDN
    }
    Invoke-RemediateExMerge 0 $Parameters.directory $legacyDns
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
    $legacyDns = @()
    for ($index = 0; $index -lt $Parameters.mailboxes.Length; $index++) {
        $mailbox = Find-RemediateStoreMailbox $Parameters.mailboxes[$index]
        if (-not (Test-Path -LiteralPath $Parameters.locations[$index])) {
            Stop-RemediateRefused ('the export ' + $Parameters.locations[$index] + ' was not found') $Parameters.mailboxes[$index]
        }
        $legacyDns += [string]$mailbox.LegacyDN
    }
    Invoke-RemediateExMerge 1 $Parameters.directory $legacyDns
    return $null
}
"""


_BODIES: dict[str, str] = {
    "describe": _DESCRIBE,
    "mailboxes": shared.DIRECTORY + shared.ITEMS + _WMI + _MAILBOXES,
    "service_states": shared.SERVICES,
    "set_services": shared.SET_SERVICES,
    "purge": _WMI + _PURGE,
    "disable": shared.DIRECTORY + _DISABLE,
    "reconnect": shared.DIRECTORY + _WMI + _RECONNECT,
    "exports": shared.EXPORT_FILES + shared.ITEMS + shared.EXPORTS,
    "export": shared.EXPORT_FILES + shared.ITEMS + _WMI + _EXMERGE + _EXPORT,
    "import": _WMI + _EXMERGE + _IMPORT,
}


def scripts(version: ExchangeVersion) -> dict[str, Script]:
    """Exchange 2000 lacks ``Exchange_Mailbox``: no reconnect (the playbook re-homes the user
    through LDAP). Its listing and purge scripts are the 2003 ones and need that class too:
    unverified on a real 2000 server, where CDOEXM would be the route."""
    unavailable = {"reconnect"} if version is ExchangeVersion.E2000 else set()
    return {
        operation: assemble(
            f"exchange{version.value}.{operation}",
            operation=operation,
            dialect=Dialect.PS2,
            parameters=PARAMETERS[operation],
            setup="",
            body=body,
        )
        for operation, body in _BODIES.items()
        if operation not in unavailable
    }
