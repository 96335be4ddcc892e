//! Fuzz the profile files module with the checks of `profiles_check.rs` (shared with the
//! corpus replay in `cargo test`): any input must parse without panicking and render back
//! byte for byte; when it is a valid file with an access key, a Replace edit must reach
//! every holder, re-parse, and leave no profile with the old key.
//!
//! Run (stable toolchain): `RUSTC_BOOTSTRAP=1 cargo fuzz run profiles` in the crate root.
#![no_main]

mod profiles_check;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    profiles_check::check(data);
});
