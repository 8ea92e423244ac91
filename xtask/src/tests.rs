use crate::qemu::Firmware;
use crate::util::Result;
pub struct Options {
    pub filter: Option<String>,
    pub jobs: usize,
    pub firmware: Firmware,
    pub static_checks: bool,
}
pub fn run(_o: Options) -> Result<i32> {
    Err("todo".into())
}
