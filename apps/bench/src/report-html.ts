import type { BenchReport } from './results.js';
export function renderHtml(report: BenchReport): string {
  return `<!doctype html><title>vipc bench</title><pre>${JSON.stringify(report.scenarios.length)}</pre>`;
}
