//! Finding out what machine this is: the VMM's fw_cfg interface, the
//! device tree, the memory map and the possible vCPUs with their policy.

pub mod cpulist;
pub mod cpus;
pub mod dt;
pub mod fw_cfg;
pub mod memmap;
