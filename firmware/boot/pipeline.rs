//! The one boot flow both architectures follow: discover the platform,
//! build the CPU model, build the tables, load kernel, initrd and command
//! line, hand off. Each architecture implements [`Platform`]; [`run`] calls
//! its steps in order and owns the two lines every boot prints (the banner
//! and the time spent in the firmware) and the one fatal path: a single
//! `hotstub: error:` line and a power-off.

use crate::platform::cpus::CpuModel;
use crate::platform::fw_cfg::{self, Directory, FwCfg, Transport};
use crate::{println, NAME, VERSION};
use alloc::string::String;
use core::fmt;

/// Why the boot cannot go on, as one line for the console.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(pub String);

pub type Result<T> = core::result::Result<T, Error>;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<String> for Error {
    fn from(s: String) -> Self {
        Error(s)
    }
}

impl From<&str> for Error {
    fn from(s: &str) -> Self {
        Error(s.into())
    }
}

impl From<fw_cfg::Error> for Error {
    fn from(e: fw_cfg::Error) -> Self {
        Error(alloc::format!("{e}"))
    }
}

/// `Err(Error)` from format arguments, for `?`-style early returns.
#[macro_export]
macro_rules! bail {
    ($($t:tt)*) => {
        return Err($crate::boot::pipeline::Error(alloc::format!($($t)*)))
    };
}

/// What an architecture provides to the boot flow. The associated types
/// carry each step's result to the later steps.
pub trait Platform {
    type Transport: Transport;
    /// What discovery found (the q35 facts, the virt DT, ...).
    type Machine;
    /// The kernel and its data in memory, ready for the hand-off.
    type Loaded;

    /// The architecture as the banner names it ("x86_64", "aarch64 (EL2)").
    fn name(&self) -> &'static str;
    /// Finds the machine and its fw_cfg. The console works afterwards (it
    /// may need the discovery to find it), so the banner follows this step.
    fn discover(&mut self) -> Result<(Self::Machine, FwCfg<Self::Transport>)>;
    /// Checks that the machine is one the firmware supports and prepares
    /// it; runs after the banner.
    fn prepare(&mut self, m: &mut Self::Machine, fw: &mut FwCfg<Self::Transport>) -> Result<()>;
    /// Every possible vCPU and which of them may come online.
    fn cpus(
        &mut self,
        m: &mut Self::Machine,
        fw: &mut FwCfg<Self::Transport>,
        files: &Directory,
    ) -> Result<CpuModel>;
    /// Builds and places the ACPI tables; returns the RSDP's address.
    fn tables(
        &mut self,
        m: &mut Self::Machine,
        cpus: &CpuModel,
        fw: &mut FwCfg<Self::Transport>,
        files: &Directory,
    ) -> Result<u64>;
    /// Loads kernel, initrd and command line (see `payload`).
    fn load(
        &mut self,
        m: &mut Self::Machine,
        fw: &mut FwCfg<Self::Transport>,
        rsdp: u64,
    ) -> Result<Self::Loaded>;
    /// Writes the hand-off data the kernel reads (zero page, EFI tables, DT).
    fn prepare_handoff(
        &mut self,
        m: &mut Self::Machine,
        cpus: &CpuModel,
        loaded: &mut Self::Loaded,
    ) -> Result<()>;
    /// Microseconds since the firmware started.
    fn elapsed_us(&self) -> u64;
    /// Enters the kernel, or the resident firmware that will.
    fn enter(self, m: Self::Machine, cpus: CpuModel, loaded: Self::Loaded) -> Result<Never>;
    /// Switches the machine off.
    fn power_off() -> !;
}

/// A step that never returns when it succeeds.
pub enum Never {}

/// Boots the machine, or prints why not and powers off.
pub fn run<P: Platform>(mut p: P) -> ! {
    match boot(&mut p) {
        Ok((m, cpus, loaded)) => match p.enter(m, cpus, loaded) {
            Ok(never) => match never {},
            Err(e) => fatal::<P>(&e),
        },
        Err(e) => fatal::<P>(&e),
    }
}

type Booted<P> = (<P as Platform>::Machine, CpuModel, <P as Platform>::Loaded);

fn boot<P: Platform>(p: &mut P) -> Result<Booted<P>> {
    let (mut m, mut fw) = p.discover()?;
    println!("{NAME} {VERSION} {}", p.name());
    p.prepare(&mut m, &mut fw)?;
    let files = fw.directory()?;
    let cpus = p.cpus(&mut m, &mut fw, &files)?;
    let rsdp = p.tables(&mut m, &cpus, &mut fw, &files)?;
    let mut loaded = p.load(&mut m, &mut fw, rsdp)?;
    p.prepare_handoff(&mut m, &cpus, &mut loaded)?;
    let us = p.elapsed_us();
    println!(
        "{NAME}: {}.{:03} ms in firmware, starting Linux",
        us / 1000,
        us % 1000
    );
    Ok((m, cpus, loaded))
}

/// The fatal path: one error line, then off.
pub fn fatal<P: Platform>(e: &dyn fmt::Display) -> ! {
    report(e);
    P::power_off()
}

/// Prints the one-line error every fatal path shows (also the panic and
/// exception handlers, which have no `Platform` value at hand).
pub fn report(e: &dyn fmt::Display) {
    println!("hotstub: error: {e}");
}
