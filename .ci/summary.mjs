// Reads vitest's JSON report and prints the plain closing line CI reads.
import { existsSync, readFileSync } from 'node:fs';

const file = process.argv[2] ?? '.ci/results.json';
if (!existsSync(file)) {
  console.log('no test report: the build or the test runner failed before any test ran');
  console.log('0 passed, 1 failed');
  process.exit(1);
}
const report = JSON.parse(readFileSync(file, 'utf8'));
const passed = report.numPassedTests ?? 0;
const failed = (report.numFailedTests ?? 0) + (report.numRuntimeErrorTestSuites ?? 0);
const skipped = (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0);
if (skipped > 0) {
  for (const suite of report.testResults ?? []) {
    for (const t of suite.assertionResults ?? []) {
      if (t.status === 'pending' || t.status === 'skipped' || t.status === 'todo') {
        console.log(`skipped under CI (counted as failed): ${t.fullName}`);
      }
    }
  }
}
for (const suite of report.testResults ?? []) {
  if (suite.status === 'failed' && (suite.assertionResults ?? []).length === 0) {
    console.log(`suite failed to load: ${suite.name}: ${(suite.message ?? '').split('\n')[0]}`);
  }
}
const failedTotal = failed + skipped;
console.log(`${passed} passed, ${failedTotal} failed`);
process.exit(failedTotal > 0 || passed === 0 ? 1 : 0);
