/**
 * What every page promises in a browser (test/e2e/pages-walk.test.ts walks them all; the passkey suite checks its
 * own pages too): no serious or critical axe-core violation, no horizontal scroll, no word broken across lines.
 * axe-core is injected as a script, so the context needs `bypassCSP: true`.
 */
import type { Page } from "playwright-core";

const AXE = require.resolve("axe-core/axe.min.js");

/** Serious and critical axe-core violations of the page, as "rule: selectors" (the code runs in the page, as a string). */
export async function axeViolations(page: Page): Promise<string[]> {
  await page.addScriptTag({ path: AXE });
  return page.evaluate(`(async () => {
    const result = await axe.run(document, { resultTypes: ["violations"] });
    return result.violations
      .filter((violation) => violation.impact === "serious" || violation.impact === "critical")
      .map((violation) => violation.id + ": " + violation.nodes.map((node) => node.target.join(" ")).join(", "));
  })()`);
}

/**
 * The layout's promises: the page is no wider than the window (no horizontal scroll), and no word in a table cell
 * (or a button, a time, a link of the navigation) is broken across lines: each word's rendered boxes
 * (Range.getClientRects) sit on one line.
 */
const LAYOUT_CHECK = `(() => {
  const problems = [];
  if (document.documentElement.scrollWidth > window.innerWidth)
    problems.push("page is " + document.documentElement.scrollWidth + "px wide in a " + window.innerWidth + "px window");
  for (const cell of document.querySelectorAll("td, th, dd, button, .button, time, nav a")) {
    const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      for (const match of (node.textContent || "").matchAll(/\\S+/g)) {
        const range = document.createRange();
        range.setStart(node, match.index);
        range.setEnd(node, match.index + match[0].length);
        const tops = new Set([...range.getClientRects()].filter((rect) => rect.width > 0).map((rect) => Math.round(rect.top)));
        if (tops.size > 1) problems.push('"' + match[0] + '" broken across ' + tops.size + " lines in <" + cell.tagName.toLowerCase() + ">");
      }
    }
  }
  return problems;
})()`;

export const layoutProblems = (page: Page): Promise<string[]> => page.evaluate(LAYOUT_CHECK);
