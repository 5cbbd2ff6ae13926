//! When work must stop: a Lambda's deadline, an API request's time budget.

#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    pub stop_at: Option<std::time::Instant>,
}

impl Deadline {
    pub fn none() -> Self {
        Self { stop_at: None }
    }

    pub fn after(budget: std::time::Duration) -> Self {
        Self {
            stop_at: Some(std::time::Instant::now() + budget),
        }
    }

    pub fn reached(&self) -> bool {
        self.stop_at
            .is_some_and(|at| std::time::Instant::now() >= at)
    }
}
