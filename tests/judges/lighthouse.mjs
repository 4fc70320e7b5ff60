// Lighthouse (mobile profile) over several URLs with one Chromium: prints one
// JSON line per URL with the four category scores and the audits that lost points.
// Usage: node lighthouse.mjs URL...   (CHROME_PATH names the browser)
import * as chromeLauncher from 'chrome-launcher';
import lighthouse from 'lighthouse';

const urls = process.argv.slice(2);
const chrome = await chromeLauncher.launch({
  chromeFlags: ['--headless=new', '--no-sandbox', '--disable-gpu'],
});
try {
  for (const url of urls) {
    const result = await lighthouse(url, {
      port: chrome.port,
      output: 'json',
      logLevel: 'error',
      onlyCategories: ['performance', 'accessibility', 'best-practices', 'seo'],
    });
    const lhr = result.lhr;
    const scores = Object.fromEntries(
      Object.entries(lhr.categories).map(([k, v]) => [k, v.score]));
    const failing = Object.values(lhr.audits)
      .filter((a) => a.score !== null && a.score < 1 &&
        ['binary', 'numeric', 'metricSavings'].includes(a.scoreDisplayMode))
      .map((a) => `${a.id}: ${a.score} ${a.displayValue || ''}`.trim());
    console.log(JSON.stringify({
      url, scores, failing, error: lhr.runtimeError?.message || null,
      benchmarkIndex: lhr.environment?.benchmarkIndex ?? null,
    }));
  }
} finally {
  await chrome.kill();
}
