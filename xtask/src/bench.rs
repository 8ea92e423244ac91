use crate::build::Arch;
use crate::util::Result;
pub fn run(_a: &[Arch], _r: usize) -> Result<i32> {
    Err("todo".into())
}
