//! The aarch64 firmware that stays below Linux at EL2 or EL3: the register
//! arithmetic of its set-up and the stage-2 tables that guard its memory.

pub mod regs;
pub mod stage2;
