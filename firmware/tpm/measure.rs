//! What the firmware measures, where (README "Measured boot" has the PCR
//! map and the reasons), and the rule that a TPM failing at any point
//! turns measured boot off with one warning line and never stops the
//! boot. Each measurement hashes the data in every active bank, extends
//! the PCR with those digests and appends the matching log record.

use super::cmd;
use super::log::{self, Log};
use super::tis::{Regs, Tis};
use super::{Alg, Digest};
use crate::println;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

/// PC Client Firmware Profile 3.3.4: PCR 0 the firmware code, 1 its
/// configuration; GRUB's convention for a boot loader (its docs,
/// "Measured Boot"): 8 the command line and boot commands, 9 the files
/// it reads (configuration, kernel, initrd).
pub const PCR_CODE: u32 = 0;
pub const PCR_CONFIG: u32 = 1;
pub const PCR_STRINGS: u32 = 8;
pub const PCR_FILES: u32 = 9;

/// Measured boot, on while the TPM answers.
pub struct Measure<'a, R: Regs> {
    on: Option<On<'a, R>>,
}

struct On<'a, R: Regs> {
    tis: Tis<R>,
    banks: Vec<Alg>,
    log: Log<'a>,
}

impl<'a, R: Regs> Measure<'a, R> {
    /// No TPM: nothing is measured, nothing printed.
    pub fn off() -> Self {
        Measure { on: None }
    }

    /// Starts the TPM behind `regs` (TPM2_Startup; already started is
    /// fine) and a log for its active banks in `area`. A TPM that does not
    /// work prints the one warning line and measures nothing.
    pub fn start(regs: R, area: &'a mut [u8]) -> Self {
        match On::start(regs, area) {
            Ok(on) => {
                let names: Vec<&str> = on.banks.iter().map(|b| b.name()).collect();
                println!(
                    "{}: measured boot on (PCR banks {})",
                    crate::NAME,
                    names.join(" ")
                );
                Measure { on: Some(on) }
            }
            Err(e) => {
                warn(&e);
                Measure { on: None }
            }
        }
    }

    pub fn is_on(&self) -> bool {
        self.on.is_some()
    }

    /// Measures `parts` (hashed in sequence) into `pcr` with a log record
    /// of type `ty` carrying `data`.
    pub fn event(&mut self, pcr: u32, ty: u32, parts: &[&[u8]], data: &[u8]) {
        let Some(on) = self.on.as_mut() else {
            return;
        };
        if let Err(e) = on.event(pcr, ty, parts, data) {
            warn(&e);
            if let Some(on) = self.on.take() {
                // A partial log would not replay: Linux gets none.
                on.log.clear();
                on.tis.close();
            }
        }
    }

    /// The firmware itself into PCR 0: its version (EV_S_CRTM_VERSION, the
    /// UCS-2 string with its NUL as EDK2 logs it, which is also what is
    /// hashed) and its image (EV_POST_CODE, "POST CODE": Firmware Profile
    /// 10.4.1 for firmware code measured as one blob).
    pub fn firmware(&mut self, version: &str, image: &[&[u8]]) {
        let ucs2: Vec<u8> = version
            .encode_utf16()
            .chain([0])
            .flat_map(u16::to_le_bytes)
            .collect();
        self.event(PCR_CODE, log::EV_S_CRTM_VERSION, &[&ucs2], &ucs2);
        self.event(PCR_CODE, log::EV_POST_CODE, image, b"POST CODE");
    }

    /// A configuration input (a fw_cfg file that steers the boot) into
    /// PCR 1: the value is hashed, the record says `name=value` (the value
    /// cut at 256 bytes in the record only).
    pub fn config(&mut self, name: &str, value: &[u8]) {
        let mut data = Vec::from(name.as_bytes());
        data.push(b'=');
        data.extend_from_slice(&value[..value.len().min(256)]);
        self.event(PCR_CONFIG, log::EV_PLATFORM_CONFIG_FLAGS, &[value], &data);
    }

    /// The ACPI (and SMBIOS) tables handed to Linux, as one blob into
    /// PCR 1, like OVMF's "ACPI DATA" record of QEMU's tables.
    pub fn tables(&mut self, parts: &[&[u8]]) {
        self.event(
            PCR_CONFIG,
            log::EV_PLATFORM_CONFIG_FLAGS,
            parts,
            b"ACPI DATA",
        );
    }

    /// EV_SEPARATOR into PCRs 0-7 (Firmware Profile 3.3.2.2): the
    /// pre-OS firmware's measurements end here; the digest is of the
    /// event data, four zero bytes.
    pub fn separators(&mut self) {
        for pcr in 0..8 {
            self.event(pcr, log::EV_SEPARATOR, &[&[0; 4]], &[0; 4]);
        }
    }

    /// The kernel command line into PCR 8 as GRUB logs it: the string
    /// (without NUL) hashed, "kernel_cmdline: " and the string with a NUL
    /// in the record.
    pub fn cmdline(&mut self, text: &[u8]) {
        let data = record(b"kernel_cmdline: ", text);
        self.event(PCR_STRINGS, log::EV_IPL, &[text], &data);
    }

    /// A loaded file (kernel, initrd) into PCR 9: its bytes hashed, its
    /// name with a NUL in the record, as GRUB does.
    pub fn file(&mut self, name: &str, parts: &[&[u8]]) {
        let data = record(b"", name.as_bytes());
        self.event(PCR_FILES, log::EV_IPL, parts, &data);
    }

    /// The boot loader's part, after the firmware's: the separators, then
    /// what the payload source chose and loaded.
    pub fn payload(&mut self, p: &Payload) {
        self.separators();
        self.cmdline(p.cmdline);
        // The boot configuration that chose the kernel on a disk (the BLS
        // entry, grub.cfg or extlinux.conf, whole) is a file the boot
        // loader read: PCR 9, as GRUB measures its grub.cfg.
        if let Some((path, text)) = p.config {
            self.file(path, &[text]);
        }
        self.file(p.kernel.0, p.kernel.1);
        if let Some((name, bytes)) = p.initrd {
            self.file(name, &[bytes]);
        }
    }

    /// Gives the TPM back to the OS. Returns whether the log is whole.
    pub fn finish(self) -> bool {
        match self.on {
            Some(on) => {
                on.tis.close();
                true
            }
            None => false,
        }
    }
}

/// What the boot loads, as [`Measure::payload`] measures it.
pub struct Payload<'p> {
    /// A disk's boot configuration: its path and text.
    pub config: Option<(&'p str, &'p [u8])>,
    /// The command line as Linux gets it, without NUL.
    pub cmdline: &'p [u8],
    /// The kernel's name and its bytes, in parts.
    pub kernel: (&'p str, &'p [&'p [u8]]),
    pub initrd: Option<(&'p str, &'p [u8])>,
}

fn record(prefix: &[u8], s: &[u8]) -> Vec<u8> {
    let mut d = Vec::with_capacity(prefix.len() + s.len() + 1);
    d.extend_from_slice(prefix);
    d.extend_from_slice(s);
    d.push(0);
    d
}

fn warn(why: &str) {
    println!("hotstub: warning: TPM: {why}; measured boot is off");
}

impl<'a, R: Regs> On<'a, R> {
    fn start(regs: R, area: &'a mut [u8]) -> Result<Self, String> {
        let mut tis = Tis::open(regs).map_err(|e| format!("{e}"))?;
        let run = |tis: &mut Tis<R>, c: &[u8], what: &str| {
            tis.transact(c).map_err(|e| format!("{what}: {e}"))
        };
        let r = run(&mut tis, &cmd::startup(), "TPM2_Startup")?;
        // TPM_RC_INITIALIZE: started since its last reset by someone
        // else (EDK2 goes on the same way: an earlier stage may have sent
        // it). QEMU resets its TPM with the machine (tpm_tis reset starts
        // the backend afresh), so under QEMU every boot starts it here.
        cmd::startup_response(&r).map_err(|e| format!("TPM2_Startup: {e}"))?;
        let r = run(&mut tis, &cmd::get_pcrs(), "TPM2_GetCapability")?;
        let banks = cmd::pcrs_response(&r).map_err(|e| format!("TPM2_GetCapability: {e}"))?;
        let banks: Vec<Alg> = banks
            .into_iter()
            .map(|b| b.map_err(|id| format!("PCR bank {id:#06x} uses a hash the firmware lacks")))
            .collect::<Result<_, _>>()?;
        if banks.is_empty() {
            return Err("no PCR bank is active".into());
        }
        let log = Log::new(area, &banks).map_err(|e| format!("{e}"))?;
        Ok(On { tis, banks, log })
    }

    // Not inlined into Measure::event, which every boot calls: x86 keeps
    // this with the TPM driver in its compressed part (linker/x86_64.ld).
    #[inline(never)]
    fn event(&mut self, pcr: u32, ty: u32, parts: &[&[u8]], data: &[u8]) -> Result<(), String> {
        let digests: Vec<Digest> = self.banks.iter().map(|a| a.hash(parts)).collect();
        let pairs: Vec<(Alg, &[u8])> = digests.iter().map(|d| (d.alg, d.bytes())).collect();
        let r = self
            .tis
            .transact(&cmd::pcr_extend(pcr, &pairs))
            .map_err(|e| format!("TPM2_PCR_Extend: {e}"))?;
        cmd::extend_response(&r).map_err(|e| format!("TPM2_PCR_Extend: {e}"))?;
        self.log
            .append(pcr, ty, &digests, data)
            .map_err(|e| format!("{e}"))
    }
}

#[cfg(test)]
mod tests;
