//! Function identifiers and return codes.
//!
//! PSCI: Arm DEN0022 "Arm Power State Coordination Interface", issue D
//! (PSCI 1.1), chapter 5 "PSCI functions": the function ID list and the
//! error code table. SMCCC: Arm DEN0028 "SMC Calling Convention" (v1.1 and
//! later): the function identifier layout in chapter 2 and the Arm
//! Architecture Calls SMCCC_VERSION and SMCCC_ARCH_FEATURES.

/// Bit 30 of a function ID: set for the SMC64/HVC64 calling convention
/// (DEN0028, function identifier layout).
pub const SMC64_BIT: u32 = 1 << 30;
/// Bit 31: fast call (DEN0028). PSCI and the Arm architecture calls are
/// all fast calls.
pub const FAST_CALL_BIT: u32 = 1 << 31;

// Arm Architecture Calls (DEN0028).
pub const SMCCC_VERSION: u32 = 0x8000_0000;
pub const SMCCC_ARCH_FEATURES: u32 = 0x8000_0001;

// PSCI functions (DEN0022D chapter 5). The 0x84.. IDs are SMC32, the
// 0xC4.. ones their SMC64 forms.
pub const PSCI_VERSION: u32 = 0x8400_0000;
pub const CPU_SUSPEND_32: u32 = 0x8400_0001;
pub const CPU_SUSPEND_64: u32 = 0xC400_0001;
pub const CPU_OFF: u32 = 0x8400_0002;
pub const CPU_ON_32: u32 = 0x8400_0003;
pub const CPU_ON_64: u32 = 0xC400_0003;
pub const AFFINITY_INFO_32: u32 = 0x8400_0004;
pub const AFFINITY_INFO_64: u32 = 0xC400_0004;
pub const MIGRATE_32: u32 = 0x8400_0005;
pub const MIGRATE_64: u32 = 0xC400_0005;
pub const MIGRATE_INFO_TYPE: u32 = 0x8400_0006;
pub const MIGRATE_INFO_UP_CPU_32: u32 = 0x8400_0007;
pub const MIGRATE_INFO_UP_CPU_64: u32 = 0xC400_0007;
pub const SYSTEM_OFF: u32 = 0x8400_0008;
pub const SYSTEM_RESET: u32 = 0x8400_0009;
pub const PSCI_FEATURES: u32 = 0x8400_000A;
pub const CPU_FREEZE: u32 = 0x8400_000B;
pub const CPU_DEFAULT_SUSPEND_32: u32 = 0x8400_000C;
pub const CPU_DEFAULT_SUSPEND_64: u32 = 0xC400_000C;
pub const NODE_HW_STATE_32: u32 = 0x8400_000D;
pub const NODE_HW_STATE_64: u32 = 0xC400_000D;
pub const SYSTEM_SUSPEND_32: u32 = 0x8400_000E;
pub const SYSTEM_SUSPEND_64: u32 = 0xC400_000E;
pub const PSCI_SET_SUSPEND_MODE: u32 = 0x8400_000F;
pub const PSCI_STAT_RESIDENCY_32: u32 = 0x8400_0010;
pub const PSCI_STAT_RESIDENCY_64: u32 = 0xC400_0010;
pub const PSCI_STAT_COUNT_32: u32 = 0x8400_0011;
pub const PSCI_STAT_COUNT_64: u32 = 0xC400_0011;
pub const SYSTEM_RESET2_32: u32 = 0x8400_0012;
pub const SYSTEM_RESET2_64: u32 = 0xC400_0012;
pub const MEM_PROTECT: u32 = 0x8400_0013;
pub const MEM_PROTECT_CHECK_RANGE_32: u32 = 0x8400_0014;
pub const MEM_PROTECT_CHECK_RANGE_64: u32 = 0xC400_0014;

/// PSCI return codes (DEN0022D error code table), 32-bit signed in W0.
pub mod ret {
    pub const SUCCESS: i32 = 0;
    pub const NOT_SUPPORTED: i32 = -1;
    pub const INVALID_PARAMETERS: i32 = -2;
    pub const DENIED: i32 = -3;
    pub const ALREADY_ON: i32 = -4;
    pub const ON_PENDING: i32 = -5;
    pub const INTERNAL_FAILURE: i32 = -6;
    pub const NOT_PRESENT: i32 = -7;
    pub const DISABLED: i32 = -8;
    pub const INVALID_ADDRESS: i32 = -9;
}

/// AFFINITY_INFO results (DEN0022D, AFFINITY_INFO).
pub mod affinity {
    pub const ON: i32 = 0;
    pub const OFF: i32 = 1;
    pub const ON_PENDING: i32 = 2;
}

/// PSCI 1.1 as returned by PSCI_VERSION: major in bits 30:16, minor in
/// 15:0 (DEN0022D, PSCI_VERSION).
pub const PSCI_VERSION_1_1: u32 = 0x0001_0001;
/// SMCCC 1.1 as returned by SMCCC_VERSION, same encoding (DEN0028).
pub const SMCCC_VERSION_1_1: u32 = 0x0001_0001;

/// MIGRATE_INFO_TYPE result 2: "Trusted OS is either not present or does
/// not require migration" (DEN0022D, MIGRATE_INFO_TYPE).
pub const MIGRATE_INFO_TYPE_NOT_PRESENT: i32 = 2;

/// CPU_SUSPEND `power_state`, original format (DEN0022D, CPU_SUSPEND; used
/// because PSCI_FEATURES(CPU_SUSPEND) reports bit 1 clear): StateID in
/// bits 15:0, StateType in bit 16 (0 standby or retention, 1 powerdown),
/// PowerLevel in bits 25:24; all other bits reserved, must be zero.
pub mod power_state {
    pub const STATE_ID_MASK: u32 = 0xffff;
    pub const STATE_TYPE_POWERDOWN: u32 = 1 << 16;
    pub const POWER_LEVEL_MASK: u32 = 0x3 << 24;
    pub const RESERVED_MASK: u32 = !(STATE_ID_MASK | STATE_TYPE_POWERDOWN | POWER_LEVEL_MASK);
    /// Core standby: StateType standby, PowerLevel 0 (core), StateID 0.
    pub const CORE_STANDBY: u32 = 0;
}
