// Prints one plain closing line, "tests: N passed, N failed, N skipped", that CI logs can be read by.
// A test file that could not run at all (it did not compile, its setup threw) is named as well,
// since its tests are counted nowhere else.
class SummaryReporter {
  onRunComplete(_contexts, results) {
    const skipped = results.numPendingTests + results.numTodoTests;
    const broken = results.numRuntimeErrorTestSuites;
    const files = broken > 0 ? `, ${broken} test file${broken === 1 ? '' : 's'} failed to run` : '';
    process.stdout.write(
      `\ntests: ${results.numPassedTests} passed, ${results.numFailedTests} failed, ${skipped} skipped${files}\n`,
    );
  }
}
module.exports = SummaryReporter;
