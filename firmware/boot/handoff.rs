//! How the firmware hands the machine to Linux on aarch64: at which EL
//! Linux starts, whether the firmware stays resident, the PSCI conduit
//! Linux uses, and how the EFI memory map lists the secure RAM the EL3
//! firmware moves to. `boot::plan` puts these together once per boot.

use crate::boot::efi::Descriptor;
use crate::psci::Conduit;

/// How the firmware hands the machine to Linux, from the EL it runs at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Handoff {
    /// At EL1 (or at EL2 with nothing to enforce): Linux is entered at the
    /// firmware's EL and calls the VMM's PSCI; the firmware leaves (it is
    /// not resident).
    Leaves { el: u8 },
    /// At EL2 with a vCPU policy: the firmware stays at EL2 as the PSCI
    /// (HVC) and stage-2 guard; Linux runs at EL1.
    ResidentEl2,
    /// At EL3: the firmware is the only PSCI (SMC), in secure RAM; Linux
    /// runs at EL2.
    ResidentEl3,
}

impl Handoff {
    /// EL2 belongs to Linux unless a policy must be enforced there: with
    /// every possible vCPU enabled the VMM's own PSCI already gives the
    /// right answers, and Linux at EL2 can run KVM. At EL3 the firmware
    /// must stay (nothing else implements PSCI there).
    pub fn decide(el: u8, all_enabled: bool) -> Handoff {
        match el {
            3 => Handoff::ResidentEl3,
            2 if !all_enabled => Handoff::ResidentEl2,
            2 => Handoff::Leaves { el: 2 },
            _ => Handoff::Leaves { el: 1 },
        }
    }

    /// The EL Linux's entry point runs at.
    pub fn linux_el(self) -> u8 {
        match self {
            Handoff::Leaves { el } => el,
            Handoff::ResidentEl2 => 1,
            Handoff::ResidentEl3 => 2,
        }
    }

    /// Whether the firmware's RAM stays in use after Linux starts.
    pub fn resident(self) -> bool {
        !matches!(self, Handoff::Leaves { .. })
    }

    /// The INTID to describe as the GTDT's virtual EL2 timer: a kernel at
    /// EL2 on a CPU with FEAT_VHE runs in VHE mode and uses that timer
    /// itself (Linux `arch_timer_acpi_init` demands it then). `dt` is what
    /// the DT's timer node lists; QEMU virt wires the timer to PPI 12,
    /// INTID 28 (hw/arm/virt.h ARCH_TIMER_NS_EL2_VIRT_IRQ), also where its
    /// DT omits it.
    pub fn el2_vtimer(self, vhe: bool, dt: Option<u32>) -> Option<u32> {
        const QEMU_VIRT_EL2_VTIMER: u32 = 28;
        (self.linux_el() == 2 && vhe).then_some(dt.unwrap_or(QEMU_VIRT_EL2_VTIMER))
    }

    /// The PSCI conduit Linux is told to use: HVC into the resident EL2, SMC
    /// into the resident EL3, or, when the firmware leaves, the VMM's, as
    /// the DT names it.
    pub fn linux_conduit(self, dt: Option<Conduit>) -> Result<Conduit, &'static str> {
        match self {
            Handoff::ResidentEl2 => Ok(Conduit::Hvc),
            Handoff::ResidentEl3 => Ok(Conduit::Smc),
            Handoff::Leaves { .. } => dt.ok_or(
                "the DT names no PSCI, and without staying resident the firmware cannot provide one",
            ),
        }
    }
}

/// The secure RAM's EFI descriptor gets no cacheability attribute: it is
/// listed (as EfiReservedMemoryType) so the normal world can tell what the
/// firmware holds, but an OS must not treat it as RAM at all. (Linux adds
/// every write-back capable descriptor to its memory, even reserved ones,
/// and then spends boot time on the struct pages of the hole up to the
/// real RAM.)
pub fn not_for_linux(map: &mut [Descriptor], secure: (u64, u64)) {
    for d in map.iter_mut() {
        if d.phys >= secure.0 && d.end() <= secure.0 + secure.1 {
            d.attr = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resident::regs::{Features, IdRegs};

    #[test]
    fn handoff_keeps_el2_for_linux_without_policy() {
        assert_eq!(Handoff::decide(1, true), Handoff::Leaves { el: 1 });
        assert_eq!(Handoff::decide(1, false), Handoff::Leaves { el: 1 });
        assert_eq!(Handoff::decide(2, true), Handoff::Leaves { el: 2 });
        assert_eq!(Handoff::decide(2, false), Handoff::ResidentEl2);
        assert_eq!(Handoff::decide(3, true), Handoff::ResidentEl3);
        assert_eq!(Handoff::decide(3, false), Handoff::ResidentEl3);
        assert_eq!(Handoff::decide(2, true).linux_el(), 2);
        assert_eq!(Handoff::ResidentEl2.linux_el(), 1);
        assert_eq!(Handoff::ResidentEl3.linux_el(), 2);
        assert!(!Handoff::decide(2, true).resident());
        assert!(Handoff::ResidentEl2.resident());
    }

    #[test]
    fn el2_vtimer_only_for_vhe_kernels_at_el2() {
        assert_eq!(Handoff::ResidentEl3.el2_vtimer(true, None), Some(28));
        assert_eq!(Handoff::ResidentEl3.el2_vtimer(true, Some(31)), Some(31));
        assert_eq!(Handoff::ResidentEl3.el2_vtimer(false, Some(28)), None);
        assert_eq!(Handoff::ResidentEl2.el2_vtimer(true, Some(28)), None);
        assert_eq!(Handoff::Leaves { el: 2 }.el2_vtimer(true, None), Some(28));
        assert_eq!(Handoff::Leaves { el: 1 }.el2_vtimer(true, None), None);
        let id = IdRegs {
            mmfr1: 1 << 8,
            ..IdRegs::default()
        };
        assert!(Features::from_id(&id).vhe);
        assert!(!Features::from_id(&IdRegs::default()).vhe);
    }

    #[test]
    fn linux_conduit_is_the_residents_or_the_vmms() {
        for dt in [None, Some(Conduit::Hvc), Some(Conduit::Smc)] {
            assert_eq!(Handoff::ResidentEl2.linux_conduit(dt), Ok(Conduit::Hvc));
            assert_eq!(Handoff::ResidentEl3.linux_conduit(dt), Ok(Conduit::Smc));
            assert_eq!(Handoff::Leaves { el: 2 }.linux_conduit(dt).ok(), dt);
        }
        assert!(Handoff::Leaves { el: 1 }.linux_conduit(None).is_err());
    }

    #[test]
    fn only_descriptors_inside_the_secure_ram_lose_cacheability() {
        let d = |phys, pages| Descriptor {
            ty: 0,
            phys,
            pages,
            attr: 0xf,
        };
        let mut map = [
            d(0x0e00_0000, 0x1000),
            d(0x0e00_0000, 0x1001),
            d(0x4000_0000, 1),
        ];
        not_for_linux(&mut map, (0x0e00_0000, 0x100_0000));
        assert_eq!(map.map(|d| d.attr), [0, 0xf, 0xf]);
    }
}
