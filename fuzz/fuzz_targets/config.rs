//! The configuration loader (`config::Config::from_toml_str`, parse and validation) on
//! arbitrary UTF-8: a configuration or a list of problems, never a panic, and every problem's
//! position inside the text.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match config::Config::from_toml_str(text) {
        Ok(cfg) => {
            for o in &cfg.origins {
                assert!(cfg.origin(&o.id).is_some());
            }
        }
        Err(e) => {
            let lines = text.split('\n').count();
            assert!(!e.problems().is_empty(), "an error without problems");
            for p in e.problems() {
                assert!(p.line <= lines, "problem on line {} of {lines}: {p}", p.line);
                assert!(p.line > 0 || p.column == 0, "column without a line: {p}");
            }
            let _ = e.to_string();
        }
    }
});
