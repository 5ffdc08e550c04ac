//! Reads the estimates criterion leaves under `target/criterion/`.

use std::path::Path;

use serde_json::Value;

/// One criterion benchmark's result.
#[derive(Debug)]
pub struct CriterionResult {
    /// The benchmark group (the workload).
    pub group: String,
    /// The function id (the allocator).
    pub function: String,
    /// The parameter (the variant), or "" when there is none.
    pub value: String,
    /// Median nanoseconds per iteration.
    pub median_ns: f64,
    /// Elements per iteration, when the benchmark declared a throughput in elements.
    pub elements: Option<u64>,
}

impl CriterionResult {
    /// Median nanoseconds per element (per iteration when no throughput was declared).
    pub fn ns_per_element(&self) -> f64 {
        self.median_ns / self.elements.unwrap_or(1).max(1) as f64
    }
}

/// Every result under `root` (a `target/criterion` directory): the `new/` estimates of each benchmark.
pub fn read_all(root: &Path) -> Result<Vec<CriterionResult>, String> {
    let mut results = Vec::new();
    if root.is_dir() {
        visit(root, &mut results)?;
    }
    Ok(results)
}

fn visit(directory: &Path, results: &mut Vec<CriterionResult>) -> Result<(), String> {
    let entries = std::fs::read_dir(directory)
        .map_err(|error| format!("{}: {error}", directory.display()))?;
    for entry in entries {
        let path = entry.map_err(|error| error.to_string())?.path();
        if !path.is_dir() {
            continue;
        }
        if path.file_name().is_some_and(|name| name == "new") {
            if let Some(result) = read_one(&path)? {
                results.push(result);
            }
        } else if path.file_name().is_none_or(|name| name != "report") {
            visit(&path, results)?;
        }
    }
    Ok(())
}

fn read_json(path: &Path) -> Result<Option<Value>, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|error| format!("{}: {error}", path.display())),
        Err(_) => Ok(None),
    }
}

fn read_one(new_directory: &Path) -> Result<Option<CriterionResult>, String> {
    let (Some(benchmark), Some(estimates)) = (
        read_json(&new_directory.join("benchmark.json"))?,
        read_json(&new_directory.join("estimates.json"))?,
    ) else {
        return Ok(None);
    };
    let text = |field: &str| benchmark[field].as_str().unwrap_or_default().to_string();
    let Some(median_ns) = estimates["median"]["point_estimate"].as_f64() else {
        return Ok(None);
    };
    Ok(Some(CriterionResult {
        group: text("group_id"),
        function: text("function_id"),
        value: text("value_str"),
        median_ns,
        elements: benchmark["throughput"]["Elements"].as_u64(),
    }))
}
