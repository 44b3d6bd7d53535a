/** Language tasks (Acc(M, D) and Perf(M, L)): a suite built from held-out text, scored by log-likelihood. */
export { buildSuite, type SuiteSource } from './suite.js';
export { evaluateTasks, encodeSuite, bootstrapStderr, type EvaluateTasksOptions, type TasksResult, type ChoiceTaskResult, type LmResult } from './evaluate.js';
export { scoreRequests, type LlRequest, type LlScore } from './score.js';
export { TASK_NAMES, DEFAULT_SIZES, parseSuiteConfig, parseTaskNames, type TaskName, type TaskSuite, type Task, type SuiteConfig } from './types.js';
