"""Exchange 2000/2003: WMI ``root\\MicrosoftExchangeV2`` (2003 only has ``Exchange_Mailbox``),
ADSI for the directory, ExMerge in batch mode with a generated ini for mail. PowerShell 2.0."""

from __future__ import annotations

from remediate.model import LINE_UNSAFE, ExchangeVersion

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
function Get-RemediateStoreEntries {
    try {
        $rootDse = [ADSI]'LDAP://RootDSE'
        $searcher = New-Object System.DirectoryServices.DirectorySearcher
        $searcher.SearchRoot = [ADSI]('LDAP://' + $rootDse.configurationNamingContext)
        $searcher.Filter = '(objectClass=msExchPrivateMDB)'
        return @($searcher.FindAll())
    }
    catch {
        Stop-RemediateIfDoubleHop $_ 'reading the stores from Active Directory (ADSI)'
        throw
    }
}

function Invoke-RemediateOperation {
    param($Parameters)
    $stores = @()
    foreach ($entry in (Get-RemediateStoreEntries)) {
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
            $logon = $null
            if ($mailbox.LastLogonTime) {
                $when = [System.Management.ManagementDateTimeConverter]::ToDateTime($mailbox.LastLogonTime)
                $logon = $when.ToUniversalTime().ToString('yyyy-MM-ddTHH:mm:ssZ')
            }
            $found += @{
                guid = $guid
                store_name = [string]$mailbox.StoreName
                storage_group = [string]$mailbox.StorageGroupName
                legacy_dn = [string]$mailbox.LegacyDN
                display_name = [string]$mailbox.MailboxDisplayName
                disconnected_at = $absent
                last_logon_at = $logon
                items = [long]$mailbox.TotalItems
                size_bytes = [long]$mailbox.Size * 1024
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


# ExMerge in batch mode, one run per mailbox in a directory of its own, so each run's PST and log
# belong to one mailbox whatever name ExMerge gives the file. The ini is written from the
# payload's values (never from script text). ExMerge has no exit code: its log's summary line
# ("N mailboxes successfully processed. N mailboxes were not successfully processed. N non-fatal
# errors encountered.") is its verdict.
_EXMERGE = r"""
function New-RemediateWorkDirectory {
    $work = Join-Path $env:TEMP ('remediate-' + [guid]::NewGuid().ToString())
    [void](New-Item -ItemType Directory -Path $work)
    return $work
}

function Read-RemediateExMergeSummary {
    param([string[]]$Log)
    $text = $Log -join ' '
    if ($text -match '(\d+) mailboxes successfully processed\.\s+(\d+) mailboxes were not\s+successfully processed\.\s+(\d+) non-fatal errors') {
        return @{ status = $matches[0]; succeeded = ([int]$matches[1] -eq 1 -and [int]$matches[2] -eq 0); errors = [long]$matches[3] }
    }
    return @{ status = 'exmerge.log has no summary line'; succeeded = $false; errors = [long]0 }
}

function Invoke-RemediateExMerge {
    param([int]$Action, [string]$Work, [string]$LegacyDn, [string]$KeepLog)
    $list = Join-Path $Work 'mailboxes.txt'
    [System.IO.File]::WriteAllLines($list, [string[]]@($LegacyDn))
    $ini = @(
        '[EXMERGE]',
        ('MergeAction=' + $Action),
        ('SourceServerName=' + $env:COMPUTERNAME),
        ('DestServerName=' + $env:COMPUTERNAME),
        ('DataDirectoryName=' + $Work),
        ('FileContainingListOfMailboxes=' + $list),
        'DataImportMethod=1',
        'CopyUserData=1',
        'CopyAssociatedFolderData=0',
        'CopyDeletedItemsFromDumpster=0',
        'LoggingLevel=1'
    )
    $iniPath = Join-Path $Work 'exmerge.ini'
    [System.IO.File]::WriteAllLines($iniPath, [string[]]$ini)
    $exchsrvr = (Get-ItemProperty 'HKLM:\SOFTWARE\Microsoft\Exchange\Setup').Services
    $exmerge = Join-Path $exchsrvr 'bin\exmerge.exe'
    $logPath = Join-Path (Split-Path $exmerge) 'exmerge.log'
    if (Test-Path -LiteralPath $logPath) {
        Remove-Item -LiteralPath $logPath
    }
    & $exmerge '-B' '-F' $iniPath '-D' | Out-Null
    $log = @()
    if (Test-Path -LiteralPath $logPath) {
        $log = @(Get-Content -LiteralPath $logPath)
        Copy-Item -LiteralPath $logPath -Destination $KeepLog -Force
    }
    return Read-RemediateExMergeSummary $log
}

function Assert-RemediateExMergeLine {
    param([string]$Value, [string]$What, [string]$Target)
    if ([regex]::IsMatch($Value, $RemediateLineUnsafe)) {
        Stop-RemediateRefused ($What + ' on ' + $env:COMPUTERNAME + ' holds a line break, a NUL or another control character, or begins or ends with a blank, and ExMerge reads it from a line-oriented file (its mailbox list, its ini): it could act on a mailbox this run does not name. Nothing was exported or imported. Correct it (a legacyExchangeDN with ADSI Edit) or leave the mailbox out of this run, then plan again') $Target
    }
}

function Assert-RemediateExMergeHost {
    Assert-RemediateExMergeLine $env:COMPUTERNAME 'the server name (SourceServerName, DestServerName)' $env:COMPUTERNAME
    Assert-RemediateExMergeLine $env:TEMP 'the TEMP directory (DataDirectoryName, FileContainingListOfMailboxes)' $env:TEMP
}

function Stop-RemediateIfExMergeFailed {
    param([string[]]$Failed, [string]$Directory, [string]$What)
    if ($Failed.Count -gt 0) {
        Stop-RemediateRefused ('ExMerge did not ' + $What + ' mailbox ' + $Failed[0] + ' on ' + $env:COMPUTERNAME + ' completely (' + $Failed.Count + ' in all); its log is beside the export in ' + $Directory + '; fix the cause (permissions on the mailbox, the 2 GB limit of an ANSI PST) and run again') $Failed[0]
    }
}
"""

# Every value ExMerge reads from its mailbox list or its ini is tested first, for the whole batch
# before anything is written or run (see remediate.model.LINE_UNSAFE, the pattern used here).
_EXMERGE += f"\n$RemediateLineUnsafe = '{LINE_UNSAFE}'\n"

_EXPORT = r"""
function Invoke-RemediateOperation {
    param($Parameters)
    Assert-RemediateExportDirectory $Parameters.directory
    Assert-RemediateExMergeHost
    $mailboxes = @{}
    foreach ($guid in $Parameters.guids) {
        $mailboxes[$guid] = Find-RemediateStoreMailbox $guid
        Assert-RemediateExMergeLine ([string]$mailboxes[$guid].LegacyDN) ('the legacyExchangeDN of mailbox ' + $guid) $guid
    }
    $made = @{}
    $failed = @()
    foreach ($guid in $Parameters.guids) {
        $mailbox = $mailboxes[$guid]
        $sourceItems = [long]$mailbox.TotalItems
        $sourceBytes = [long]$mailbox.Size * 1024
        Move-RemediateEarlierExport $Parameters.directory $guid
        $work = New-RemediateWorkDirectory
        $summary = Invoke-RemediateExMerge 0 $work ([string]$mailbox.LegacyDN) (Get-RemediateExportPath $Parameters.directory $guid '.exmerge.log')
        $written = @(Get-ChildItem -LiteralPath $work -Filter '*.pst')
        $path = Get-RemediateExportPath $Parameters.directory $guid '.pst'
        if ($written.Count -eq 1) {
            Move-Item -LiteralPath $written[0].FullName -Destination $path
            [System.IO.File]::WriteAllText((Get-RemediateExportPath $Parameters.directory $guid '.exmerge-name.txt'), $written[0].Name)
        }
        $succeeded = $summary.succeeded -and $summary.errors -eq 0 -and $written.Count -eq 1
        Write-RemediateRecord (Get-RemediateExportPath $Parameters.directory $guid '.export.json') @{
            tool = 'ExMerge'
            mailbox = $guid
            status = $summary.status
            succeeded = $succeeded
            source_items = $sourceItems
            source_bytes = $sourceBytes
            exported_items = $null
            estimated_items = $null
            bad_items = $summary.errors
            file_bytes = (Get-RemediateFileBytes $path)
        }
        if (-not $succeeded) {
            $failed += $guid
        }
        $made[$guid] = Get-RemediateExportRecord $Parameters.directory $guid
    }
    Stop-RemediateIfExMergeFailed $failed $Parameters.directory 'export'
    return $made
}
"""

# ExMerge imports the PST named as it named it on export (recorded beside the export) from the
# data directory, merging (DataImportMethod=1) so an item already present is not copied again.
_IMPORT = r"""
function Invoke-RemediateOperation {
    param($Parameters)
    Assert-RemediateExMergeHost
    $work = @()
    for ($index = 0; $index -lt $Parameters.mailboxes.Length; $index++) {
        $mailbox = Find-RemediateStoreMailbox $Parameters.mailboxes[$index]
        Assert-RemediateExMergeLine ([string]$mailbox.LegacyDN) ('the legacyExchangeDN of mailbox ' + $Parameters.mailboxes[$index]) $Parameters.mailboxes[$index]
        $location = $Parameters.locations[$index]
        $nameFile = Get-RemediateExportPath (Split-Path $location) $Parameters.export_mailboxes[$index] '.exmerge-name.txt'
        if (-not (Test-Path -LiteralPath $location) -or -not (Test-Path -LiteralPath $nameFile)) {
            Stop-RemediateRefused ('the export ' + $location + ' (or the name ExMerge gave it, ' + $nameFile + ') was not found from ' + $env:COMPUTERNAME) $Parameters.mailboxes[$index]
        }
        $work += @{ mailbox = $mailbox; target = $Parameters.mailboxes[$index]; source = $Parameters.export_mailboxes[$index]; location = $location; name = [System.IO.File]::ReadAllText($nameFile).Trim() }
    }
    $failed = @()
    foreach ($item in $work) {
        $directory = Split-Path $item.location
        $data = New-RemediateWorkDirectory
        Copy-Item -LiteralPath $item.location -Destination (Join-Path $data $item.name)
        $suffix = '.import.' + ([guid]$item.target).ToString()
        $summary = Invoke-RemediateExMerge 1 $data ([string]$item.mailbox.LegacyDN) (Get-RemediateExportPath $directory $item.source ($suffix + '.exmerge.log'))
        Write-RemediateRecord (Get-RemediateExportPath $directory $item.source ($suffix + '.json')) @{
            tool = 'ExMerge'
            export = $item.source
            mailbox = $item.target
            status = $summary.status
            succeeded = $summary.succeeded
            imported_items = $null
            bad_items = $summary.errors
        }
        if (-not $summary.succeeded -or $summary.errors -gt 0) {
            $failed += $item.target
        }
    }
    Stop-RemediateIfExMergeFailed $failed $Parameters.directory 'import into'
    return $null
}
"""


_BODIES: dict[str, str] = {
    "describe": _DESCRIBE,
    "mailboxes": shared.DIRECTORY + _WMI + _MAILBOXES,
    "service_states": shared.SERVICES,
    "set_services": shared.SET_SERVICES,
    "purge": _WMI + _PURGE,
    "disable": shared.DIRECTORY + _DISABLE,
    "reconnect": shared.DIRECTORY + _WMI + _RECONNECT,
    "exports": shared.EXPORT_FILES + shared.EXPORTS,
    "export": shared.EXPORT_FILES + _WMI + _EXMERGE + _EXPORT,
    "import": shared.EXPORT_FILES + _WMI + _EXMERGE + _IMPORT,
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
