//! The firmware's console: one `core::fmt::Write` sink registered by the
//! architecture code (COM1 on x86, PL011 on arm), used by `println!`.

use core::fmt::{self, Write};
use spin::Mutex;

static SINK: Mutex<Option<&'static mut (dyn Write + Send)>> = Mutex::new(None);

/// Installs the console sink; earlier output is dropped.
pub fn set_sink(sink: &'static mut (dyn Write + Send)) {
    *SINK.lock() = Some(sink);
}

#[doc(hidden)]
pub fn _print(args: fmt::Arguments) {
    if let Some(s) = SINK.lock().as_mut() {
        let _ = s.write_fmt(args);
    }
}

/// Prints `args` in one console write unless the console stays taken for
/// `spins` tries: the fatal paths must reach their power-off even when the
/// CPU that faulted was holding the console.
pub fn print_bounded(args: fmt::Arguments, spins: u32) {
    for _ in 0..spins {
        if let Some(mut sink) = SINK.try_lock() {
            if let Some(s) = sink.as_mut() {
                let _ = s.write_fmt(args);
            }
            return;
        }
        core::hint::spin_loop();
    }
}

/// Prints to the firmware console.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => ($crate::console::_print(format_args!($($arg)*)));
}

/// Prints a line to the firmware console. Sinks turn "\n" into "\r\n".
#[macro_export]
macro_rules! println {
    () => ($crate::print!("\n"));
    ($($arg:tt)*) => ({ $crate::console::_print(format_args!($($arg)*)); $crate::print!("\n"); });
}
