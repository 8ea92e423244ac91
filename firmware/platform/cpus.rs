//! The CPU model shared by both architectures: every *possible* vCPU with its
//! hardware ID, and which of them are *enabled* (may be brought online).
//!
//! The ACPI builders describe every possible vCPU (MADT entry plus processor
//! device); enabled ones are marked enabled, the others online-capable, so a
//! hotplug-aware OS (Linux 6.11+) can enable them later.

use alloc::vec::Vec;
use core::fmt;

/// One possible vCPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Vcpu {
    /// ACPI processor UID: ties the MADT entry to the processor device.
    pub uid: u32,
    /// x86: APIC ID. arm: MPIDR affinity bits (Aff3..Aff0 at their MPIDR_EL1
    /// positions, see [`MPIDR_AFFINITY_MASK`]).
    pub hw_id: u64,
    /// Enabled vCPUs may be brought online; the others are online-capable.
    pub enabled: bool,
}

/// Affinity fields of MPIDR_EL1: Aff3 [39:32], Aff2 [23:16], Aff1 [15:8],
/// Aff0 [7:0] (Arm ARM D19.2 "MPIDR_EL1"). The MADT GICC MPIDR field uses
/// the same layout (ACPI 6.5 table 5.37).
pub const MPIDR_AFFINITY_MASK: u64 = 0xff_00ff_ffff;

/// Why a CPU set was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CpuError {
    /// No vCPU at all.
    Empty,
    /// Two vCPUs share a UID.
    DuplicateUid(u32),
    /// Two vCPUs share a hardware ID.
    DuplicateHwId(u64),
    /// No vCPU is enabled, so nothing could boot.
    NoneEnabled,
}

impl fmt::Display for CpuError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CpuError::Empty => write!(f, "no vCPUs"),
            CpuError::DuplicateUid(u) => write!(f, "duplicate vCPU UID {u}"),
            CpuError::DuplicateHwId(h) => write!(f, "duplicate vCPU hardware ID {h:#x}"),
            CpuError::NoneEnabled => write!(f, "no vCPU is enabled"),
        }
    }
}

/// All possible vCPUs, in the order they are described (the boot CPU first
/// by convention of the callers).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CpuModel {
    cpus: Vec<Vcpu>,
}

impl CpuModel {
    /// Takes the possible vCPUs as given (no validation; see [`Self::validated`]).
    pub fn new(cpus: Vec<Vcpu>) -> Self {
        CpuModel { cpus }
    }

    /// arm virt: every possible vCPU in DT order (UID = index, hardware ID =
    /// MPIDR affinity), all enabled; the VMM's policy is applied on top
    /// (`cpulist::apply_policy`).
    pub fn from_mpidrs(mpidrs: &[u64]) -> Self {
        let cpus = mpidrs.iter().enumerate().map(|(i, &m)| Vcpu {
            uid: i as u32,
            hw_id: m & MPIDR_AFFINITY_MASK,
            enabled: true,
        });
        CpuModel::new(cpus.collect())
    }

    pub fn iter(&self) -> core::slice::Iter<'_, Vcpu> {
        self.cpus.iter()
    }

    pub fn as_slice(&self) -> &[Vcpu] {
        &self.cpus
    }

    /// Number of possible vCPUs.
    pub fn len(&self) -> usize {
        self.cpus.len()
    }

    pub fn is_empty(&self) -> bool {
        self.cpus.is_empty()
    }

    pub fn enabled_count(&self) -> usize {
        self.cpus.iter().filter(|c| c.enabled).count()
    }

    /// Index of the vCPU with this hardware ID (its position in the model).
    pub fn index_of_hw_id(&self, hw_id: u64) -> Option<usize> {
        self.cpus.iter().position(|c| c.hw_id == hw_id)
    }

    /// Sets each vCPU's enabled flag from `on`, in the model's order.
    pub fn set_enabled_in_order(&mut self, on: &[bool]) {
        for (c, &on) in self.cpus.iter_mut().zip(on) {
            c.enabled = on;
        }
    }

    /// Sets the enabled flag of the vCPU with this UID; false if there is none.
    pub fn set_enabled(&mut self, uid: u32, enabled: bool) -> bool {
        let cpu = self.cpus.iter_mut().find(|c| c.uid == uid);
        cpu.map(|c| c.enabled = enabled).is_some()
    }
}

/// Checks what the ACPI tables need: at least one vCPU, unique UIDs and
/// hardware IDs, at least one enabled vCPU.
pub fn validate(cpus: &[Vcpu]) -> Result<(), CpuError> {
    if cpus.is_empty() {
        return Err(CpuError::Empty);
    }
    // Sorted copies, not a pairwise scan: q35 allows 4,096 vCPUs, and
    // comparing every pair cost 3 ms of firmware time per call at 1,024.
    let mut uids: Vec<u64> = cpus.iter().map(|c| u64::from(c.uid)).collect();
    super::sort_keys(&mut uids);
    if let Some(w) = uids.windows(2).find(|w| w[0] == w[1]) {
        return Err(CpuError::DuplicateUid(w[0] as u32));
    }
    let mut ids: Vec<u64> = cpus.iter().map(|c| c.hw_id).collect();
    super::sort_keys(&mut ids);
    if let Some(w) = ids.windows(2).find(|w| w[0] == w[1]) {
        return Err(CpuError::DuplicateHwId(w[0]));
    }
    if !cpus.iter().any(|c| c.enabled) {
        return Err(CpuError::NoneEnabled);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn cpu(uid: u32, hw_id: u64, enabled: bool) -> Vcpu {
        Vcpu {
            uid,
            hw_id,
            enabled,
        }
    }

    #[test]
    fn model_queries() {
        let mut m = CpuModel::new(vec![cpu(0, 0, true), cpu(1, 2, false), cpu(2, 4, true)]);
        assert_eq!(m.len(), 3);
        assert_eq!(m.enabled_count(), 2);
        assert_eq!(m.index_of_hw_id(2), Some(1));
        assert_eq!(m.as_slice()[2].hw_id, 4);
        assert_eq!(m.index_of_hw_id(4), Some(2));
        assert!(m.index_of_hw_id(3).is_none());
        assert!(m.set_enabled(1, true));
        assert!(!m.set_enabled(9, true));
        assert_eq!(m.enabled_count(), 3);
    }

    #[test]
    fn from_mpidrs_in_dt_order() {
        // Bits outside the affinity fields (31, U at 30) are dropped.
        let m = CpuModel::from_mpidrs(&[0x8000_0000, 0x1, 0x1_4000_0000]);
        let want = [cpu(0, 0, true), cpu(1, 1, true), cpu(2, 1 << 32, true)];
        assert_eq!(m.as_slice(), want);
    }

    #[test]
    fn validation() {
        assert_eq!(validate(&[]), Err(CpuError::Empty));
        assert_eq!(
            validate(&[cpu(0, 0, true), cpu(0, 1, true)]),
            Err(CpuError::DuplicateUid(0))
        );
        assert_eq!(
            validate(&[cpu(0, 5, true), cpu(1, 5, true)]),
            Err(CpuError::DuplicateHwId(5))
        );
        assert_eq!(
            validate(&[cpu(0, 0, false), cpu(1, 1, false)]),
            Err(CpuError::NoneEnabled)
        );
        assert!(validate(&[cpu(0, 0, true), cpu(1, 1, false)]).is_ok());
    }
}
