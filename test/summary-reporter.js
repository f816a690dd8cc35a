// eslint-disable-next-line @typescript-eslint/no-require-imports -- Jest loads this reporter as CommonJS
const fs = require('node:fs');

// Prints one plain closing line, "tests: N passed, N failed, N skipped", that CI logs can be read by.
// A test file that could not run at all (it did not compile, its setup threw) is named as well,
// since its tests are counted nowhere else. With OMNISCRAPE_TEST_SUMMARY_FILE set, the counts are
// appended there too, one line per run, for scripts/test.sh to add up its two runs.
class SummaryReporter {
  onRunComplete(_contexts, results) {
    const skipped = results.numPendingTests + results.numTodoTests;
    const broken = results.numRuntimeErrorTestSuites;
    const files = broken > 0 ? `, ${broken} test file${broken === 1 ? '' : 's'} failed to run` : '';
    process.stdout.write(
      `\ntests: ${results.numPassedTests} passed, ${results.numFailedTests} failed, ${skipped} skipped${files}\n`,
    );
    if (process.env.OMNISCRAPE_TEST_SUMMARY_FILE) {
      fs.appendFileSync(
        process.env.OMNISCRAPE_TEST_SUMMARY_FILE,
        `${results.numPassedTests} ${results.numFailedTests} ${skipped} ${broken}\n`,
      );
    }
  }
}
module.exports = SummaryReporter;
