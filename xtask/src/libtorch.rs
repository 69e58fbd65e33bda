//! libtorch for `--features tch`: the user's `LIBTORCH`, or PyTorch installed
//! once from the package registry into a cached virtual environment.
//!
//! The environment lives outside `target/` so that `cargo clean` does not cost
//! a new download: `$RESILIENCE_CACHE_DIR`, else `$XDG_CACHE_HOME/resilience`,
//! else `~/.cache/resilience`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const TORCH_VERSION: &str = "2.13.0";
/// Written once the install is complete and checked; holds the `torch/lib` path.
const READY_MARKER: &str = ".resilience-ready";

/// Environment for cargo commands that build or run against libtorch.
pub(crate) type Env = Vec<(&'static str, OsString)>;

pub(crate) fn provision() -> Result<Env, String> {
    if let Some(libtorch) = std::env::var_os("LIBTORCH") {
        let lib = PathBuf::from(&libtorch).join("lib");
        println!(
            "==> libtorch: using LIBTORCH={}",
            PathBuf::from(&libtorch).display()
        );
        return Ok(vec![("LD_LIBRARY_PATH", prepend(&lib, "LD_LIBRARY_PATH")?)]);
    }
    let venv = cache_dir()?.join(format!("torch-{TORCH_VERSION}"));
    let lib = match std::fs::read_to_string(venv.join(READY_MARKER)) {
        Ok(lib) => PathBuf::from(lib.trim()),
        Err(_) => install(&venv)?,
    };
    println!(
        "==> libtorch: PyTorch {TORCH_VERSION} from {}",
        venv.display()
    );
    let bin = venv.join("bin");
    Ok(vec![
        ("LIBTORCH_USE_PYTORCH", "1".into()),
        ("VIRTUAL_ENV", venv.clone().into()),
        ("PATH", prepend(&bin, "PATH")?),
        ("LD_LIBRARY_PATH", prepend(&lib, "LD_LIBRARY_PATH")?),
    ])
}

fn install(venv: &Path) -> Result<PathBuf, String> {
    let started = Instant::now();
    println!(
        "==> libtorch: installing PyTorch {TORCH_VERSION} into {} (once; about 5 GB, a few minutes)",
        venv.display()
    );
    std::fs::create_dir_all(venv).map_err(|e| format!("cannot create {}: {e}", venv.display()))?;
    let python = std::env::var_os("PYTHON").unwrap_or_else(|| "python3".into());
    run(Command::new(&python).arg("-m").arg("venv").arg(venv))?;
    let venv_python = venv.join("bin").join("python");
    println!("==> libtorch: pip install torch=={TORCH_VERSION}");
    run(Command::new(&venv_python).args([
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "--progress-bar",
        "off",
        &format!("torch=={TORCH_VERSION}"),
    ]))?;
    let probe = "import os, torch; print(torch.__version__); print(os.path.join(os.path.dirname(torch.__file__), 'lib'))";
    let output = Command::new(&venv_python)
        .args(["-c", probe])
        .output()
        .map_err(|e| format!("cannot run {}: {e}", venv_python.display()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let mut lines = stdout.lines();
    let (Some(version), Some(lib)) = (lines.next(), lines.next()) else {
        return Err(format!(
            "torch does not import in {}: {}",
            venv.display(),
            String::from_utf8_lossy(&output.stderr)
        ));
    };
    if !version.starts_with(TORCH_VERSION) {
        return Err(format!("expected torch {TORCH_VERSION}, found {version}"));
    }
    std::fs::write(venv.join(READY_MARKER), lib)
        .map_err(|e| format!("cannot write to {}: {e}", venv.display()))?;
    println!("==> libtorch: ready after {:.0?}", started.elapsed());
    Ok(PathBuf::from(lib))
}

fn cache_dir() -> Result<PathBuf, String> {
    let var = |name| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("RESILIENCE_CACHE_DIR")
        .or_else(|| var("XDG_CACHE_HOME").map(|d| d.join("resilience")))
        .or_else(|| var("HOME").map(|d| d.join(".cache").join("resilience")))
        .ok_or_else(|| "set RESILIENCE_CACHE_DIR or HOME to cache libtorch".to_owned())
}

fn prepend(dir: &Path, var: &str) -> Result<OsString, String> {
    let rest = std::env::var_os(var).unwrap_or_default();
    let paths = std::iter::once(dir.to_path_buf()).chain(std::env::split_paths(&rest));
    std::env::join_paths(paths).map_err(|e| format!("cannot extend {var}: {e}"))
}

fn run(command: &mut Command) -> Result<(), String> {
    let status = command
        .status()
        .map_err(|e| format!("cannot run {command:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{command:?} failed ({status})"))
    }
}
