"""PowerShell 2.0 pieces both families of scripts use: services, the server's domain controller,
mail-enabled users by objectGUID or msExchMailboxGuid (ADSI), export files."""

from __future__ import annotations

SERVICES = r"""
function Invoke-RemediateOperation {
    param($Parameters)
    $states = @{}
    foreach ($name in $Parameters.names) {
        $service = Get-Service | Where-Object { $_.Name -eq $name }
        if ($null -eq $service) {
            Stop-RemediateRefused ('no service ' + $name + ' on ' + $env:COMPUTERNAME) $name
        }
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

SET_SERVICES = r"""
function Invoke-RemediateOperation {
    param($Parameters)
    $services = @()
    foreach ($name in $Parameters.names) {
        $service = Get-Service | Where-Object { $_.Name -eq $name }
        if ($null -eq $service) {
            Stop-RemediateRefused ('no service ' + $name + ' on ' + $env:COMPUTERNAME) $name
        }
        $services += $service
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

DIRECTORY = r"""
function ConvertTo-RemediateLdapGuid {
    param([guid]$Guid)
    $hex = ''
    foreach ($byte in $Guid.ToByteArray()) {
        $hex += '\' + $byte.ToString('x2')
    }
    return $hex
}

function Find-RemediateUser {
    param([string]$Attribute, [guid]$Guid)
    $searcher = New-Object System.DirectoryServices.DirectorySearcher
    $searcher.Filter = '(&(objectCategory=person)(' + $Attribute + '=' + (ConvertTo-RemediateLdapGuid $Guid) + '))'
    return $searcher.FindOne()
}

function Get-RemediateUserOrRefuse {
    param([string]$Guid)
    $user = Find-RemediateUser 'objectGUID' $Guid
    if ($null -eq $user) {
        Stop-RemediateRefused ('no user with objectGUID ' + $Guid) $Guid
    }
    return $user
}

function Assert-RemediateNotMailEnabled {
    param($User, [string]$Guid)
    if ($User.Properties['homemdb'].Count -gt 0 -or $User.Properties['msexchmailboxguid'].Count -gt 0) {
        Stop-RemediateRefused ('user ' + $User.Path + ' is still mail-enabled') $Guid
    }
}

function Get-RemediateOwner {
    param([guid]$Mailbox)
    $found = Find-RemediateUser 'msExchMailboxGuid' $Mailbox
    if ($null -eq $found) {
        return $null
    }
    return [string](New-Object System.Guid (,$found.Properties['objectguid'][0]))
}
"""

EXPORTS = r"""
function Invoke-RemediateOperation {
    param($Parameters)
    $found = @{}
    foreach ($guid in $Parameters.guids) {
        $path = Get-RemediateExportFile $Parameters.directory $guid
        if ($null -ne $path) {
            $found[$guid] = @{ location = $path; item_ids = (Get-RemediateExportItemIds $path) }
        }
    }
    return $found
}
"""

EXPORT_FILES = r"""
function Get-RemediateExportFile {
    param([string]$Directory, [string]$Mailbox)
    $path = Join-Path $Directory ($Mailbox + '.pst')
    if (Test-Path -LiteralPath $path) {
        return $path
    }
    return $null
}
"""

# Item identities (Internet Message-IDs) of a mailbox or an export file. No Exchange cmdlet or WMI
# class lists them; they need MAPI (CDO 1.21 on 2003) or EWS (2007+). Not written yet: the script
# stops with this message rather than report a wrong list.
ITEMS = r"""
function Get-RemediateItemIds {
    param([string]$Mailbox)
    throw ('listing the items of mailbox ' + $Mailbox + ' is not implemented for real servers yet (needs MAPI or EWS)')
}

function Get-RemediateExportItemIds {
    param([string]$Path)
    throw ('listing the items of export ' + $Path + ' is not implemented for real servers yet (needs MAPI)')
}
"""
