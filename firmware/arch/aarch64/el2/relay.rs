//! The resident EL2 firmware's `psci::Platform`: a relay to QEMU's PSCI,
//! which is SMC at EL2 (hw/arm/virt.c) and starts a secondary at the
//! caller's EL, here in the firmware's own EL2 entry (`res_el2_secondary`
//! in `el2.rs`, handed in as `secondary_entry` so that this file needs
//! nothing from its parent).

use hotstub::psci::ids::{self, power_state::CORE_STANDBY, ret};
use hotstub::psci::{Conduit, Platform};

use super::super::stop::fatal;
use super::super::{cpu, hw};

pub struct El2 {
    /// Where QEMU's CPU_ON starts a secondary, at EL2 with the MMU off.
    pub secondary_entry: unsafe extern "C" fn(),
}

impl Platform for El2 {
    fn standby_states(&self) -> &[u32] {
        &[CORE_STANDBY]
    }

    fn cpu_on(&self, index: usize, mpidr: u64) -> Result<(), i32> {
        let entry = self.secondary_entry as *const () as u64;
        // A core that just passed CPU_OFF may not have reached QEMU's
        // power-down yet, and QEMU then answers ALREADY_ON: retry for up to
        // 100 ms of counter time. The window is one trap and one SMC on the
        // other core, but under TCG that vCPU's host thread may be
        // descheduled for a while on a loaded host; the PSCI lock is held
        // only in this rare race. The result goes back to the
        // caller; the firmware does not print while Linux owns the console.
        let (start, freq) = hw::counter();
        let limit = freq / 10;
        loop {
            match hw::smccc(Conduit::Smc, ids::CPU_ON_64, mpidr, entry, index as u64) as i32 {
                ret::SUCCESS => return Ok(()),
                ret::ALREADY_ON if hw::counter().0.wrapping_sub(start) < limit => {
                    core::hint::spin_loop()
                }
                _ => break,
            }
        }
        Err(ret::INTERNAL_FAILURE)
    }

    fn cpu_standby(&self, _: u32) {
        cpu::wait_for_interrupt()
    }

    fn cpu_off(&self, _index: usize) -> ! {
        hw::smccc(Conduit::Smc, ids::CPU_OFF, 0, 0, 0);
        fatal("QEMU's PSCI CPU_OFF returned")
    }

    fn system_off(&self) -> ! {
        hw::smccc(Conduit::Smc, ids::SYSTEM_OFF, 0, 0, 0);
        hw::halt()
    }

    fn system_reset(&self) -> ! {
        hw::smccc(Conduit::Smc, ids::SYSTEM_RESET, 0, 0, 0);
        hw::halt()
    }
}
