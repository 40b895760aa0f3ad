//! Which local program stands in for a container image.

use std::path::{Path, PathBuf};

/// How a container starts locally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Launch {
    /// Run `program` with `args` (the container's `command`).
    Exec { program: PathBuf, args: Vec<String> },
    /// No local program for this image: the task fails to start as on ECS.
    CannotPull { reason: String },
}

/// The worker image (any registry, any tag, repository `baton-worker`) runs the built
/// `baton-worker`; `local:<executable>` runs that executable (on PATH, or relative to
/// `root`); anything else cannot be pulled.
pub fn launch_for(image: &str, command: &[String], worker: &Path, root: &Path) -> Launch {
    if let Some(executable) = image.strip_prefix("local:") {
        let path = Path::new(executable);
        let program = if executable.contains('/') && path.is_relative() {
            root.join(path)
        } else {
            path.to_path_buf()
        };
        return Launch::Exec {
            program,
            args: command.to_vec(),
        };
    }
    let repository = image.rsplit('/').next().unwrap_or(image);
    let repository = repository.split(['@', ':']).next().unwrap_or(repository);
    if repository == "baton-worker" {
        return Launch::Exec {
            program: worker.to_path_buf(),
            args: command.to_vec(),
        };
    }
    Launch::CannotPull {
        reason: cannot_pull(image),
    }
}

/// ECS's stopped reason for an image that is nowhere to be found.
pub fn cannot_pull(image: &str) -> String {
    format!(
        "CannotPullContainerError: pull image manifest has been retried 1 time(s): failed to resolve ref {image}: not found"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn launch(image: &str) -> Launch {
        launch_for(
            image,
            &["a".into()],
            Path::new("/bin/worker"),
            Path::new("/repo"),
        )
    }

    #[test]
    fn the_worker_image_from_any_registry_runs_the_worker() {
        for image in [
            "baton-worker",
            "baton-worker:1",
            "111122223333.dkr.ecr.us-east-1.amazonaws.com/baton-worker:1.0",
            "ghcr.io/x/baton-worker@sha256:abc",
        ] {
            assert_eq!(
                launch(image),
                Launch::Exec {
                    program: "/bin/worker".into(),
                    args: vec!["a".into()]
                },
                "{image}"
            );
        }
    }

    #[test]
    fn local_images_run_their_executable() {
        assert_eq!(
            launch("local:python3"),
            Launch::Exec {
                program: "python3".into(),
                args: vec!["a".into()]
            }
        );
        assert_eq!(
            launch("local:tests/programs/crash.sh"),
            Launch::Exec {
                program: "/repo/tests/programs/crash.sh".into(),
                args: vec!["a".into()]
            }
        );
    }

    #[test]
    fn other_images_cannot_be_pulled() {
        for image in ["nginx", "baton-worker-old:1", "public.ecr.aws/x/other:2"] {
            let Launch::CannotPull { reason } = launch(image) else {
                panic!("{image}")
            };
            assert!(reason.starts_with("CannotPullContainerError"), "{reason}");
        }
    }
}
