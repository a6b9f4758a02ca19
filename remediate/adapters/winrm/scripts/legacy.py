"""Exchange 2003: WMI ``root\\MicrosoftExchangeV2`` (``Exchange_Mailbox``, ``Exchange_DSAccessDC``;
Exchange 2003 SDK), ADSI for the one directory write (the strip), ExMerge in batch mode with a
generated ini for mail.
PowerShell 2.0 (Windows Management Framework 2.0 brings it and WinRM to Windows Server 2003 SP2).

Exchange 2000 gets no scripts: it runs on Windows 2000, for which no WinRM exists, and it has no
``Exchange_Mailbox`` (the ExchangeMapiTableProvider came with Exchange 2003); the adapter refuses
it with what to do instead (``EXCHANGE_2000_REFUSAL``)."""

from __future__ import annotations

from remediate.model import LINE_UNSAFE, RECOVERY_STORAGE_GROUP, ExchangeVersion

from . import shared
from .assembly import Dialect, Script, assemble
from .parameters import PARAMETERS

# One enumeration of the server's mailboxes per script, indexed by GUID. A GUID is not unique on
# a server: a recovery storage group holds restored copies of mailboxes under their GUIDs
# (KB824126; Exchange_Mailbox names a mailbox by server, storage group, store and GUID, all keys
# of the class). A server has at most one recovery storage group, and Exchange System Manager
# names it "Recovery Storage Group" (RECOVERY_STORAGE_GROUP). A lookup names the store the plan
# saw the mailbox in, "<storage group>\<store>" ('': the live one wherever it is), and only a
# live mailbox is ever returned: mail is never delivered to a recovery copy, and Reconnect() and
# Purge() of one would act on a restore, not on the user's mailbox.
_WMI = r"""
function Get-RemediateStoreMailboxes {
    $all = Get-WmiObject -Namespace 'root\MicrosoftExchangeV2' -Class 'Exchange_Mailbox'
    return @($all | Where-Object { $_.ServerName -eq $env:COMPUTERNAME })
}

function Get-RemediateCopyKind {
    param($Mailbox)
    if ([string]$Mailbox.StorageGroupName -eq 'RECOVERY_GROUP') {
        return 'recovery'
    }
    return 'live'
}

function Get-RemediateStoreKey {
    param($Mailbox)
    return [string]$Mailbox.StorageGroupName + '\' + [string]$Mailbox.StoreName
}

function Get-RemediateStoreMailboxIndex {
    $index = @{}
    foreach ($mailbox in (Get-RemediateStoreMailboxes)) {
        $key = ([guid]$mailbox.MailboxGUID).ToString()
        if ($index.ContainsKey($key)) {
            $index[$key] += ,$mailbox
        }
        else {
            $index[$key] = @($mailbox)
        }
    }
    return $index
}

function Find-RemediateStoreMailbox {
    param($Index, [string]$Guid, [string]$Store)
    $key = ([guid]$Guid).ToString()
    if (-not $Index.ContainsKey($key)) {
        Stop-RemediateRefused ('no mailbox ' + $Guid + ' on ' + $env:COMPUTERNAME) $Guid
    }
    $found = @($Index[$key])
    if ($Store) {
        $found = @($found | Where-Object { (Get-RemediateStoreKey $_) -eq $Store })
        if ($found.Count -eq 0) {
            Stop-RemediateRefused ('mailbox ' + $Guid + ' is no longer in ' + $Store + ' on ' + $env:COMPUTERNAME + ' (moved since the plan?); plan again') $Guid
        }
    }
    $live = @($found | Where-Object { (Get-RemediateCopyKind $_) -eq 'live' })
    if ($live.Count -eq 0) {
        Stop-RemediateRefused ('mailbox ' + $Guid + ' on ' + $env:COMPUTERNAME + ' is only a copy in the recovery storage group, which is never reconnected, exported or purged') $Guid
    }
    if ($live.Count -gt 1) {
        $where = @($live | ForEach-Object { Get-RemediateStoreKey $_ }) -join '; '
        Stop-RemediateRefused ('mailbox ' + $Guid + ' is in more than one store on ' + $env:COMPUTERNAME + ' (' + $where + '): remediate will not guess which; plan again') $Guid
    }
    return $live[0]
}
""".replace("RECOVERY_GROUP", RECOVERY_STORAGE_GROUP)

# The stores are not read here: the adapter reads them from the configuration naming context
# through its own LDAP connection (ports.ExchangeCatalog), since ADSI on this server would need
# credentials a plain NTLM session cannot pass on to a DC (the double hop). The directory servers
# DSAccess uses are the server's own WMI (Exchange_DSAccessDC, aa143708(v=exchg.65)): Type 1
# "Local Domain Controller" and 2 "Global Catalog" (Type Property, aa144564); Type 0, the
# configuration DC, serves the configuration partition only. IsUp false: "not available the last
# time Exchange attempted to access it" (aa127074), so not what the store reads through now.
_DESCRIBE = r"""
function Invoke-RemediateOperation {
    param($Parameters)
    $dcs = @()
    $gcs = @()
    foreach ($dc in @(Get-WmiObject -Namespace 'root\MicrosoftExchangeV2' -Class 'Exchange_DSAccessDC')) {
        if (-not $dc.IsUp) {
            continue
        }
        if ($dc.Type -eq 2) {
            $gcs += [string]$dc.Name
        }
        elseif ($dc.Type -eq 1) {
            $dcs += [string]$dc.Name
        }
    }
    $first = ''
    if ($dcs.Count -gt 0) {
        $first = $dcs[0]
    }
    return @{ dc = $first; dcs = $dcs; gcs = $gcs }
}
"""

# Exchange_Mailbox.Size is in bytes ("[read, Units(\"Bytes\")] uint64 Size", Exchange 2003 SDK,
# Size Property); TotalItems is a uint32 count of the mailbox's messages (TotalItems Property).
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
                copy = Get-RemediateCopyKind $mailbox
                legacy_dn = [string]$mailbox.LegacyDN
                display_name = [string]$mailbox.MailboxDisplayName
                disconnected_at = $absent
                last_logon_at = $logon
                items = [long]$mailbox.TotalItems
                size_bytes = [long]$mailbox.Size
            }
        }
    }
    return ,$found
}
"""

_PURGE = r"""
function Invoke-RemediateOperation {
    param($Parameters)
    $stored = Get-RemediateStoreMailboxIndex
    $doomed = @()
    for ($index = 0; $index -lt $Parameters.guids.Length; $index++) {
        $guid = $Parameters.guids[$index]
        $mailbox = Find-RemediateStoreMailbox $stored $guid $Parameters.stores[$index]
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

# Exchange_Mailbox.Reconnect takes a sAMAccountName only (Exchange 2003 SDK, Reconnect Method):
# the adapter reads it from AD with its own connection and hands it over (``logons``), after
# checking on a global catalog that no other user of the forest has it.
_RECONNECT = r"""
function Invoke-RemediateOperation {
    param($Parameters)
    $stored = Get-RemediateStoreMailboxIndex
    $work = @()
    for ($index = 0; $index -lt $Parameters.mailboxes.Length; $index++) {
        $mailbox = Find-RemediateStoreMailbox $stored $Parameters.mailboxes[$index] $Parameters.stores[$index]
        $work += @{ mailbox = $mailbox; logon = [string]$Parameters.logons[$index] }
    }
    foreach ($item in $work) {
        [void]$item.mailbox.Reconnect($item.logon)
    }
    return $null
}
"""

# The one script of Exchange 2003 that still uses ADSI on the server, and only for a write: it
# strips the user through the server's own DC, the one its Cleanup Agent reads (the port's
# contract). Moving it to our LDAP connection would not spare this server's writes the double hop:
# Exchange_Mailbox.Reconnect and ExMerge reach AD as the caller too, so an Exchange 2003 server
# needs Kerberos delegation for the repair's writes anyway (README, "The double hop").
_DIRECTORY_WRITE = r"""
function ConvertTo-RemediateLdapGuid {
    param([guid]$Guid)
    $hex = ''
    foreach ($byte in $Guid.ToByteArray()) {
        $hex += '\' + $byte.ToString('x2')
    }
    return $hex
}

function Get-RemediateUserOrRefuse {
    param([string]$Guid)
    $searcher = New-Object System.DirectoryServices.DirectorySearcher
    $searcher.Filter = '(&(objectCategory=person)(objectGUID=' + (ConvertTo-RemediateLdapGuid $Guid) + '))'
    try {
        $user = $searcher.FindOne()
    }
    catch {
        Stop-RemediateIfDoubleHop $_ 'an Active Directory search (ADSI)'
        throw
    }
    if ($null -eq $user) {
        Stop-RemediateRefused ('no user with objectGUID ' + $Guid) $Guid
    }
    return $user
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

function Get-RemediateExchangeBin {
    return Join-Path (Get-ItemProperty 'HKLM:\SOFTWARE\Microsoft\Exchange\Setup').Services 'bin'
}

# Batch mode (-B) with our ini (-F), no -D: a progress window has no desktop in a WinRS shell.
# The log goes where the ini says (LogFileName), in this run's work directory: older builds
# otherwise write C:\ExMerge.log or beside exmerge.exe, shared by every run (KB174197).
function Invoke-RemediateExMerge {
    param([int]$Action, [string]$Work, [string]$LegacyDn, [string]$KeepLog)
    $logPath = Join-Path $Work 'exmerge.log'
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
        'LoggingLevel=1',
        ('LogFileName=' + $logPath)
    )
    $iniPath = Join-Path $Work 'exmerge.ini'
    [System.IO.File]::WriteAllLines($iniPath, [string[]]$ini)
    $exmerge = Join-Path (Get-RemediateExchangeBin) 'exmerge.exe'
    & $exmerge '-B' '-F' $iniPath | Out-Null
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

# What ExMerge needs, checked when the plan asks whether this server can export mail:
# exmerge.exe in Exchsrvr\bin (it is a separate download; KB174197), and an export directory that
# is not on the system drive of the server being repaired (PSTs filling it would stop the store).
# Send As and Receive As on the stores for the account (KB292509) are read by the adapter from each
# store's DACL through LDAP (WinRmExchange._missing_store_rights), not here.
_PREREQUISITES = r"""
function Invoke-RemediateOperation {
    param($Parameters)
    $problems = @()
    $bin = Get-RemediateExchangeBin
    if (-not (Test-Path -LiteralPath (Join-Path $bin 'exmerge.exe'))) {
        $problems += ('ExMerge is not installed on ' + $env:COMPUTERNAME + ': copy exmerge.exe and exmerge.ini from the Exchange Server Mailbox Merge Wizard download into ' + $bin + ' (KB174197)')
    }
    $root = [System.IO.Path]::GetPathRoot([string]$Parameters.directory)
    if ($root -and $root.TrimEnd('\') -eq $env:SystemDrive) {
        $problems += ('the export directory ' + $Parameters.directory + ' is on the system drive (' + $env:SystemDrive + ') of ' + $env:COMPUTERNAME + ', the server being repaired: PSTs filling it would stop the store; set export_directory in the inventory to another drive or a share')
    }
    return ,$problems
}
"""

_EXPORT = r"""
function Invoke-RemediateOperation {
    param($Parameters)
    $stored = Get-RemediateStoreMailboxIndex
    Assert-RemediateExportDirectory $Parameters.directory
    Assert-RemediateExMergeHost
    $mailboxes = @{}
    for ($index = 0; $index -lt $Parameters.guids.Length; $index++) {
        $guid = $Parameters.guids[$index]
        $mailboxes[$guid] = Find-RemediateStoreMailbox $stored $guid $Parameters.stores[$index]
        Assert-RemediateExMergeLine ([string]$mailboxes[$guid].LegacyDN) ('the legacyExchangeDN of mailbox ' + $guid) $guid
    }
    $made = @{}
    $failed = @()
    foreach ($guid in $Parameters.guids) {
        $mailbox = $mailboxes[$guid]
        $sourceItems = [long]$mailbox.TotalItems
        $sourceBytes = [long]$mailbox.Size
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
    $stored = Get-RemediateStoreMailboxIndex
    Assert-RemediateExMergeHost
    $work = @()
    for ($index = 0; $index -lt $Parameters.mailboxes.Length; $index++) {
        $mailbox = Find-RemediateStoreMailbox $stored $Parameters.mailboxes[$index] $Parameters.stores[$index]
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
    "mailboxes": _WMI + _MAILBOXES,
    "service_states": shared.SERVICES,
    "running_dependents": shared.DEPENDENTS,
    "set_services": shared.SET_SERVICES,
    "purge": _WMI + _PURGE,
    "disable": _DIRECTORY_WRITE + _DISABLE,
    "reconnect": _WMI + _RECONNECT,
    "exports": shared.EXPORT_FILES + shared.EXPORTS,
    "exmerge_prerequisites": _EXMERGE + _PREREQUISITES,
    "export": shared.EXPORT_FILES + _WMI + _EXMERGE + _EXPORT,
    "import": shared.EXPORT_FILES + _WMI + _EXMERGE + _IMPORT,
}


EXCHANGE_2000_REFUSAL = (
    "{server} runs Exchange 2000, which remediate cannot drive: Exchange 2000 runs on Windows "
    "2000, for which there is no WinRM (Windows Management Framework 2.0, KB968930, exists for "
    "Windows XP, Server 2003 SP2 and later), and it has no Exchange_Mailbox WMI class (Exchange "
    "2003 brought it). Follow KB278447 by hand on this server (Exchange System Manager: stop MTA "
    "Stacks and SMTP; ExMerge the new mail out; Active Directory Users and Computers: Exchange "
    "Tasks > Delete Mailbox; Run Cleanup Agent; Reconnect, or MBConn; ExMerge the mail back; "
    "start the services), or upgrade it to Exchange 2003 on Windows Server 2003 SP2 with WMF 2.0 "
    "and plan again. `remediate plan --world` rehearses the repair on a world file meanwhile"
)


def scripts(version: ExchangeVersion) -> dict[str, Script]:
    """The Exchange 2003 scripts (none for Exchange 2000: see the module's docstring)."""
    if version is ExchangeVersion.E2000:
        return {}
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
    }
