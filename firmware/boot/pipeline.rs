//! The one boot flow both architectures follow: discover the platform,
//! describe the machine, plan the hand-off, build (or adopt) the tables,
//! load kernel, initrd and command line, hand off. Each architecture implements [`Arch`]; [`run`] calls
//! its steps in order and owns the two lines every boot prints (the banner
//! and the time spent in the firmware) and the one fatal path: a single
//! `hotstub: error:` line and a power-off.

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

/// What an architecture provides to the boot flow. Each entry path fills
/// one read-only description of the machine ([`Arch::Machine`]) and one
/// hand-off plan ([`Arch::Plan`]) before any table is written; the later
/// steps read both and write neither (docs/design.md).
pub trait Arch {
    /// What discovery found before the console works (the virt DT's board
    /// and its fw_cfg, q35's fw_cfg).
    type Found;
    /// What the boot reads from as it goes: fw_cfg on QEMU (kernel,
    /// tables the VMM offers).
    type Sources;
    /// The machine as the entry path found it: RAM, CPUs, console,
    /// interrupt controller, where the kernel and the tables come from.
    type Machine;
    /// How Linux is entered and what the firmware keeps.
    type Plan;
    /// The kernel and its data in memory, ready for the hand-off.
    type Loaded;

    /// The architecture as the banner names it ("x86_64", "aarch64 (EL2)").
    fn name(&self) -> &'static str;
    /// Finds the machine's console and sources. The console works
    /// afterwards (it may need the discovery to find it), so the banner
    /// follows this step.
    fn discover(&mut self) -> Result<Self::Found>;
    /// Checks that the machine is one the firmware supports and describes
    /// it, every possible vCPU and which may come online included; runs
    /// after the banner.
    fn describe(&mut self, found: Self::Found) -> Result<(Self::Machine, Self::Sources)>;
    /// Decides the hand-off before tables are built (they describe it).
    fn plan(&mut self, m: &Self::Machine) -> Result<Self::Plan>;
    /// Builds and places the ACPI tables, or adopts the VMM's.
    fn tables(
        &mut self,
        m: &Self::Machine,
        p: &Self::Plan,
        src: &mut Self::Sources,
    ) -> Result<Tables>;
    /// Loads kernel, initrd and command line from where the machine
    /// description says they are (see `payload`).
    fn load(
        &mut self,
        m: &Self::Machine,
        p: &Self::Plan,
        src: &mut Self::Sources,
        t: &Tables,
    ) -> Result<Self::Loaded>;
    /// Writes the hand-off data the kernel reads (zero page, EFI tables, DT).
    fn prepare_handoff(
        &mut self,
        m: &Self::Machine,
        p: &Self::Plan,
        t: &Tables,
        loaded: &mut Self::Loaded,
    ) -> Result<()>;
    /// Microseconds since the firmware started.
    fn elapsed_us(&self) -> u64;
    /// Enters the kernel, or the resident firmware that will.
    fn enter(self, m: Self::Machine, p: Self::Plan, loaded: Self::Loaded) -> Result<Never>;
    /// Switches the machine off.
    fn power_off() -> !;
}

/// Where the ACPI (and SMBIOS) tables handed to Linux are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tables {
    pub rsdp: u64,
    /// Bytes of the table area in use from its start.
    pub used: u64,
    /// The SMBIOS 3.0 entry point, for an EFI configuration table (arm64;
    /// on x86 Linux scans the BIOS area for it).
    pub smbios3: Option<u64>,
}

/// A step that never returns when it succeeds.
pub enum Never {}

/// Boots the machine, or prints why not and powers off.
pub fn run<P: Arch>(mut p: P) -> ! {
    // Every failure ends in `fatal`, which never returns: nothing is
    // dropped on the way out, so a failed step costs no clean-up code.
    let found = step::<P, _>(p.discover());
    println!("{NAME} {VERSION} {}", p.name());
    let (m, mut src) = step::<P, _>(p.describe(found));
    let plan = step::<P, _>(p.plan(&m));
    let tables = step::<P, _>(p.tables(&m, &plan, &mut src));
    let mut loaded = step::<P, _>(p.load(&m, &plan, &mut src, &tables));
    step::<P, _>(p.prepare_handoff(&m, &plan, &tables, &mut loaded));
    let us = p.elapsed_us();
    println!(
        "{NAME}: {}.{:03} ms in firmware, starting Linux",
        us / 1000,
        us % 1000
    );
    match step::<P, _>(p.enter(m, plan, loaded)) {}
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
        type Found = ();
        type Sources = ();
        type Machine = ();
        type Plan = ();
        type Loaded = ();
        fn name(&self) -> &'static str {
            "test"
        }
        fn discover(&mut self) -> Result<()> {
            self.step("discover")
        }
        fn describe(&mut self, _: ()) -> Result<((), ())> {
            self.step("describe").map(|()| ((), ()))
        }
        fn plan(&mut self, _: &()) -> Result<()> {
            self.step("plan")
        }
        fn tables(&mut self, _: &(), _: &(), _: &mut ()) -> Result<Tables> {
            self.step("tables")?;
            Ok(Tables {
                rsdp: 0xe_0000,
                used: 36,
                smbios3: None,
            })
        }
        fn load(&mut self, _: &(), _: &(), _: &mut (), t: &Tables) -> Result<()> {
            assert_eq!(t.rsdp, 0xe_0000, "the RSDP reaches the loader");
            self.step("load")
        }
        fn prepare_handoff(&mut self, _: &(), _: &(), t: &Tables, _: &mut ()) -> Result<()> {
            assert_eq!(t.used, 36, "the tables' size reaches the hand-off");
            self.step("handoff")
        }
        fn elapsed_us(&self) -> u64 {
            log("timer");
            1234
        }
        fn enter(self, _: (), _: (), _: ()) -> Result<Never> {
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
            [
                "discover", "describe", "plan", "tables", "load", "handoff", "timer", "enter",
                "off"
            ]
        );
    }

    #[test]
    fn a_failed_step_powers_off_before_the_next() {
        assert_eq!(steps_until("discover"), ["discover", "off"]);
        assert_eq!(
            steps_until("tables"),
            ["discover", "describe", "plan", "tables", "off"]
        );
        assert_eq!(
            steps_until("handoff"),
            ["discover", "describe", "plan", "tables", "load", "handoff", "off"]
        );
    }
}
