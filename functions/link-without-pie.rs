//! Build script shared by the four functions (each `Cargo.toml` points `build` here):
//! their Linux executables are linked as fixed-address (non-PIE) executables.
//!
//! Why (issue 12): a position-independent executable carries one dynamic relocation per
//! pointer in its read-only data (vtables, string tables: about 16,600 of them, 390 KB of
//! `.rela.dyn` in claim-intake), and the dynamic loader applies every one of them at each
//! cold start before `main` runs. Linked at a fixed address, the linker resolves them
//! once, at build time: a smaller binary and a shorter start. The code stays
//! position-independent (only the link changes), so the dependencies built as shared
//! libraries (crc-fast's `cdylib`) are unaffected: `rustc-link-arg-bins` reaches only this
//! package's executables. The price is that the executable's own code is not at a random
//! address (ASLR still randomises the stack, the heap and the shared libraries); the
//! functions run one per Firecracker micro-VM and parse only JSON and S3 events in safe
//! Rust.
fn main() {
    // Cargo rebuilds and reruns a build script whose source changed; nothing else it
    // reads but the target, so any file of the package will do (a path that does not
    // exist would make it run at every build). Also used by tools/exchange-floor.
    println!("cargo:rerun-if-changed=Cargo.toml");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "linux" && env == "gnu" {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}
