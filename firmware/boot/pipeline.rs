//! The one boot flow both architectures follow: discover the platform,
//! build the CPU model, build the tables, load kernel, initrd and command
//! line, hand off. Each architecture implements [`Arch`]; [`run`] calls
//! its steps in order and owns the two lines every boot prints (the banner
//! and the time spent in the firmware) and the one fatal path: a single
//! `hotstub: error:` line and a power-off.

use crate::platform::cpus::CpuModel;
use crate::platform::fw_cfg::{Directory, FwCfg, Transport};
use crate::{println, NAME, VERSION};
use core::fmt;

/// A failed step. Making one prints the step's one-line reason
/// (`hotstub: error: ...`, see [`report`]); the flow then powers the
/// machine off. Printing at once keeps the reason free of allocation and
/// formatting code: every fatal message goes through this one path.
#[derive(Debug)]
pub struct Error(());

pub type Result<T> = core::result::Result<T, Error>;

impl Error {
    pub fn new(why: &dyn fmt::Display) -> Error {
        report(why);
        Error(())
    }
}

/// Any error that can say what went wrong (`?` on a message or another
/// module's error). Error itself is not `Display`, so this does not
/// overlap `From<T> for T`.
impl<E: fmt::Display> From<E> for Error {
    fn from(e: E) -> Self {
        Error::new(&e)
    }
}

/// An [`Error`] from format arguments.
#[macro_export]
macro_rules! err {
    ($($t:tt)*) => {
        $crate::boot::pipeline::Error::new(&format_args!($($t)*))
    };
}

/// Returns an [`Error`] from format arguments.
#[macro_export]
macro_rules! bail {
    ($($t:tt)*) => {
        return Err($crate::err!($($t)*))
    };
}

/// What an architecture provides to the boot flow. The associated types
/// carry each step's result to the later steps.
pub trait Arch {
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
pub fn run<P: Arch>(mut p: P) -> ! {
    // Every failure ends in `fatal`, which never returns: nothing is
    // dropped on the way out, so a failed step costs no clean-up code.
    let (mut m, mut fw) = step::<P, _>(p.discover());
    println!("{NAME} {VERSION} {}", p.name());
    step::<P, _>(p.prepare(&mut m, &mut fw));
    let files = step::<P, _>(fw.directory().map_err(Error::from));
    let cpus = step::<P, _>(p.cpus(&mut m, &mut fw, &files));
    let rsdp = step::<P, _>(p.tables(&mut m, &cpus, &mut fw, &files));
    let mut loaded = step::<P, _>(p.load(&mut m, &mut fw, rsdp));
    step::<P, _>(p.prepare_handoff(&mut m, &cpus, &mut loaded));
    let us = p.elapsed_us();
    println!(
        "{NAME}: {}.{:03} ms in firmware, starting Linux",
        us / 1000,
        us % 1000
    );
    match step::<P, _>(p.enter(m, cpus, loaded)) {}
}

/// A step's value, or off (its error line is already out).
fn step<P: Arch, T>(r: Result<T>) -> T {
    match r {
        Ok(v) => v,
        Err(_) => P::power_off(),
    }
}

/// Prints the one-line error every fatal path shows (also the panic and
/// exception handlers, which have no `Arch` value at hand).
pub fn report(e: &dyn fmt::Display) {
    println!("hotstub: error: {e}");
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::platform::cpus::Vcpu;
    use crate::platform::fw_cfg::testing::Fake;
    use std::cell::RefCell;
    use std::vec::Vec;

    std::thread_local! {
        static STEPS: RefCell<Vec<&'static str>> = const { RefCell::new(Vec::new()) };
    }

    fn log(s: &'static str) {
        STEPS.with(|l| l.borrow_mut().push(s));
    }

    /// A platform whose step `fail` fails; every step logs itself and
    /// power-off ends the test by unwinding.
    struct Scripted {
        fail: &'static str,
    }

    impl Scripted {
        fn step(&self, name: &'static str) -> Result<()> {
            log(name);
            if self.fail == name {
                Err(Error::new(&name))
            } else {
                Ok(())
            }
        }
    }

    impl Arch for Scripted {
        type Transport = Fake;
        type Machine = ();
        type Loaded = ();
        fn name(&self) -> &'static str {
            "test"
        }
        fn discover(&mut self) -> Result<((), FwCfg<Fake>)> {
            self.step("discover")?;
            Ok(((), FwCfg::probe(Fake::with(&[])).unwrap()))
        }
        fn prepare(&mut self, _: &mut (), _: &mut FwCfg<Fake>) -> Result<()> {
            self.step("prepare")
        }
        fn cpus(&mut self, _: &mut (), _: &mut FwCfg<Fake>, _: &Directory) -> Result<CpuModel> {
            self.step("cpus")?;
            Ok(CpuModel::new(std::vec![Vcpu {
                uid: 0,
                hw_id: 0,
                enabled: true
            }]))
        }
        fn tables(
            &mut self,
            _: &mut (),
            _: &CpuModel,
            _: &mut FwCfg<Fake>,
            _: &Directory,
        ) -> Result<u64> {
            self.step("tables")?;
            Ok(0xe_0000)
        }
        fn load(&mut self, _: &mut (), _: &mut FwCfg<Fake>, rsdp: u64) -> Result<()> {
            assert_eq!(rsdp, 0xe_0000, "the RSDP reaches the loader");
            self.step("load")
        }
        fn prepare_handoff(&mut self, _: &mut (), _: &CpuModel, _: &mut ()) -> Result<()> {
            self.step("handoff")
        }
        fn elapsed_us(&self) -> u64 {
            log("timer");
            1234
        }
        fn enter(self, _: (), _: CpuModel, _: ()) -> Result<Never> {
            log("enter");
            Err(Error::new(&"entry returned"))
        }
        fn power_off() -> ! {
            log("off");
            std::panic::resume_unwind(std::boxed::Box::new(()))
        }
    }

    fn steps_until(fail: &'static str) -> Vec<&'static str> {
        STEPS.with(|l| l.borrow_mut().clear());
        let r = std::panic::catch_unwind(|| run(Scripted { fail }));
        assert!(r.is_err(), "run returned");
        STEPS.with(|l| l.borrow().clone())
    }

    #[test]
    fn steps_run_in_order_and_end_in_the_kernel() {
        assert_eq!(
            steps_until(""),
            ["discover", "prepare", "cpus", "tables", "load", "handoff", "timer", "enter", "off"]
        );
    }

    #[test]
    fn a_failed_step_powers_off_before_the_next() {
        assert_eq!(steps_until("discover"), ["discover", "off"]);
        assert_eq!(
            steps_until("tables"),
            ["discover", "prepare", "cpus", "tables", "off"]
        );
        assert_eq!(
            steps_until("handoff"),
            ["discover", "prepare", "cpus", "tables", "load", "handoff", "off"]
        );
    }
}
