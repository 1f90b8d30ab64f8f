//! `promote check`: an environments directory held to every rule promote and Terraform
//! depend on, without AWS. The rules live in `rollout` (the schemas for single fields,
//! `rollout::validate` for the rest); this only reports them, all at once, for CI.

use std::path::Path;

use rollout::Environments;
use rollout::validate::terraform_name_lengths;

use crate::cli::events;
use crate::cli::exit::Exit;
use crate::cli::ui::Ui;

/// Exit 0 with the stage order when `dir` is valid; otherwise one line per problem (file,
/// field, what is wrong and what it takes) and exit 2.
pub fn check(ui: &Ui, dir: &Path) -> anyhow::Result<()> {
    let (stages, problems) = match Environments::check(dir) {
        Ok(env) => (env.stage_names(), terraform_name_lengths(&env)),
        Err(problems) => (Vec::new(), problems),
    };
    let valid = problems.is_empty();
    let event = events::Checked {
        environments: dir.to_path_buf(),
        valid,
        stages: if valid { stages.clone() } else { Vec::new() },
        problems: problems
            .iter()
            .map(|p| events::Problem {
                file: p.path().to_path_buf(),
                field: p.field().map(str::to_string),
                message: p.to_string(),
            })
            .collect(),
    };
    if valid {
        ui.emit_result(
            format!(
                "environments ok: {} stages, {}",
                stages.len(),
                stages.join(" -> ")
            ),
            &event,
        );
        return Ok(());
    }
    ui.emit(&event);
    for p in &problems {
        ui.say(format!("error: {p}"));
    }
    Err(Exit::BadInput(format!(
        "{} problem(s) in {}; fix them and run `promote check` again",
        problems.len(),
        dir.display()
    ))
    .into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::exit;
    use crate::cli::ui::Format;

    fn repository_environments() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../environments")
    }

    #[test]
    fn a_valid_directory_prints_its_stage_order() {
        let ui = Ui::capture(Format::Table);
        check(&ui, &repository_environments()).unwrap();
        assert_eq!(
            ui.output().0,
            "environments ok: 3 stages, dev -> test -> live\n"
        );
    }

    #[test]
    fn every_problem_is_one_line_and_the_exit_code_is_bad_input() {
        let dir = std::env::temp_dir().join(format!("promote-check-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for name in ["project.json", "dev.json", "test.json", "live.json"] {
            let text = std::fs::read_to_string(repository_environments().join(name)).unwrap();
            let text = match name {
                "dev.json" => text.replacen("\"poll_interval_seconds\"", "\"poll_secs\"", 1),
                "live.json" => text.replacen("\"upstream\": \"test\"", "\"upstream\": \"qa\"", 1),
                _ => text,
            };
            std::fs::write(dir.join(name), text).unwrap();
        }
        let ui = Ui::capture(Format::Json);
        let err = check(&ui, &dir).unwrap_err();
        let (out, _) = ui.output();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(exit::code_of(&err), exit::BAD_INPUT);
        assert!(err.to_string().starts_with("2 problem(s) in "), "{err}");
        let event: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
        assert_eq!(event["event"], "checked");
        assert_eq!(event["valid"], false);
        let problems = event["problems"].as_array().unwrap();
        // Both dev.json's schema problems; live.json's upstream waits for sound files.
        assert!(
            problems
                .iter()
                .all(|p| p["file"].as_str().unwrap().ends_with("dev.json")),
            "{problems:?}"
        );
        let messages: Vec<&str> = problems
            .iter()
            .map(|p| p["message"].as_str().unwrap())
            .collect();
        for want in [
            "missing field `poll_interval_seconds`",
            "unknown field `poll_secs`",
        ] {
            assert!(messages.iter().any(|m| m.contains(want)), "{messages:?}");
        }
    }
}
