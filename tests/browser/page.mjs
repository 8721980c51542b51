// Drives headless Chromium (playwright-core) against the status page of a
// running example, for tests/browser.rs, which starts the example, reads
// what this prints and asserts on it.
//
//   STATUS_URL=http://127.0.0.1:PORT/status STATUS_API_KEY=dev-key \
//   CHROMIUM=/usr/bin/chromium SCREENSHOT_DIR=target/browser node page.mjs
//
// It writes one JSON object per line on stdout: `anonymous` and `keyed`
// (what each caller's page shows, what the browser requested, every
// console error and CSP violation), then `ready` (the keyed page is open
// and its live updates connected); after it reads a line `down` on stdin
// (the test has taken the database down), `live`: the open page as the
// watch stream has changed it, without a reload. It exits 1 with the
// reason on stderr when a step fails or times out.

import { createInterface } from 'node:readline';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const url = need('STATUS_URL');
const key = need('STATUS_API_KEY');
const executablePath = need('CHROMIUM');
const shots = need('SCREENSHOT_DIR');
/** Longest wait for any one thing the page should do. */
const DEADLINE_MS = Number(process.env.DEADLINE_MS || 30000);

function need(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`${name} is not set`);
    process.exit(2);
  }
  return value;
}

function say(step, data) {
  process.stdout.write(JSON.stringify({ step, ...data }) + '\n');
}

/** The next line on stdin. */
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
async function expectLine(word) {
  const { value, done } = await lines.next();
  if (done || value.trim() !== word) {
    throw new Error(`expected "${word}" on stdin, got ${done ? 'end of input' : JSON.stringify(value)}`);
  }
}

/** What a page shows, read from its DOM. Runs in the page. */
function readPage() {
  const text = (el) => (el ? el.textContent.trim() : null);
  const q = (sel, root = document) => root.querySelector(sel);
  const all = (sel, root = document) => [...root.querySelectorAll(sel)];
  const cellsOf = (li) => all('ol.bar > li', li);
  const comps = all('li.comp');
  const cellTexts = (li) => cellsOf(li).map((c) => text(q('i', c)));
  return {
    title: document.title,
    heading: text(q('h1')),
    identity: text(q('p.id')),
    overall: text(q('#overall strong')),
    overallClass: q('#overall')?.className ?? null,
    headline: text(q('#overall .h')),
    live: text(q('#live')),
    sections: all('h2').map(text),
    detailsNote: document.body.textContent.includes('Details are shown to authorized callers.'),
    overallCells: comps.length ? cellTexts(comps[0]) : [],
    components: comps
      .filter((li) => li.hasAttribute('data-c'))
      .map((li) => ({
        name: li.getAttribute('data-c'),
        status: text(q('.row .st', li)),
        critical: !!q('.tag', li),
        error: text(q('p.err', li)),
        blockedBy: text(all('p.mu', li).find((p) => p.textContent.startsWith('Blocked by')) ?? null),
        uptime: text(q('p.up', li)),
        cells: cellTexts(li),
      })),
    objectives: all('#h-s ~ div table tbody th[scope=row]').map(text),
    transitions: all('#transitions > li').map(text),
    charts: all('svg').length,
    // Every status word next to its colour.
    unlabelled: all('.st').filter((el) => !el.textContent.trim()).length,
    // A phone must not scroll sideways (the tables scroll in their box).
    overflowX: document.documentElement.scrollWidth - window.innerWidth,
    background: getComputedStyle(document.body).backgroundColor,
    colour: getComputedStyle(document.body).color,
    // Set before the database goes down: still there means no reload.
    sameDocument: window.__sameDocument === true,
    bytes: new TextEncoder().encode('<!DOCTYPE html>\n' + document.documentElement.outerHTML).length,
  };
}

/** Text a bar cell shows when focused (the keyboard's hover). */
async function focusedCell(page) {
  const cell = page.locator('ol.bar > li').last();
  if ((await cell.count()) === 0) return null;
  await cell.focus();
  return cell.evaluate((li) => {
    const i = li.querySelector('i');
    const box = i.getBoundingClientRect();
    return { text: i.textContent, width: box.width, height: box.height, focused: document.activeElement === li };
  });
}

/** Opens the page in a new context with `options`; records what leaves it. */
async function open(browser, options) {
  const context = await browser.newContext(options);
  const page = await context.newPage();
  const seen = { requests: [], consoleErrors: [], pageErrors: [], cspViolations: [] };
  // Bypasses the page's CSP (injected by the driver), so it sees every violation.
  await page.addInitScript(() => {
    window.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) =>
      window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`),
    );
  });
  page.on('request', (r) => seen.requests.push(r.url()));
  page.on('console', (m) => {
    if (m.type() === 'error') seen.consoleErrors.push(m.text());
  });
  page.on('pageerror', (e) => seen.pageErrors.push(String(e)));
  const response = await page.goto(url, { waitUntil: 'load', timeout: DEADLINE_MS });
  const headers = response.headers();
  return {
    context,
    page,
    seen,
    response: {
      status: response.status(),
      contentType: headers['content-type'] ?? null,
      csp: headers['content-security-policy'] ?? null,
      vary: headers['vary'] ?? null,
    },
  };
}

/** Waits until the page's live updates say `live`. */
async function connected(page) {
  await page.waitForFunction(() => document.getElementById('live')?.textContent === 'live', null, {
    timeout: DEADLINE_MS,
  });
}

async function finish(opened) {
  return {
    ...opened.seen,
    cspViolations: await opened.page.evaluate(() => window.__csp),
    response: opened.response,
  };
}

async function main() {
  mkdirSync(shots, { recursive: true });
  const browser = await chromium.launch({
    executablePath,
    // Root in a container has no user namespaces for Chromium's sandbox.
    args: ['--no-sandbox'],
    timeout: DEADLINE_MS,
  });
  try {
    // An anonymous caller: the overall status only.
    const anonymous = await open(browser, { colorScheme: 'light' });
    await connected(anonymous.page);
    const anonymousDom = await anonymous.page.evaluate(readPage);
    await anonymous.page.screenshot({ path: join(shots, 'anonymous.png'), fullPage: true });
    say('anonymous', { dom: anonymousDom, ...(await finish(anonymous)) });
    await anonymous.context.close();

    // A keyed caller (the header on every request, the watch stream's too).
    const keyedOptions = { extraHTTPHeaders: { 'x-api-key': key } };
    const dark = await open(browser, { ...keyedOptions, colorScheme: 'dark', viewport: { width: 1280, height: 900 } });
    await connected(dark.page);
    const darkDom = await dark.page.evaluate(readPage);
    await dark.page.screenshot({ path: join(shots, 'dark.png'), fullPage: true });
    const darkSeen = await finish(dark);
    await dark.context.close();

    const phone = await open(browser, {
      ...keyedOptions,
      colorScheme: 'light',
      viewport: { width: 390, height: 844 },
      deviceScaleFactor: 2,
      isMobile: true,
      hasTouch: true,
    });
    await connected(phone.page);
    const phoneDom = await phone.page.evaluate(readPage);
    await phone.page.screenshot({ path: join(shots, 'phone.png'), fullPage: true });
    const phoneSeen = await finish(phone);
    await phone.context.close();

    const light = await open(browser, { ...keyedOptions, colorScheme: 'light', viewport: { width: 1280, height: 900 } });
    await connected(light.page);
    const dom = await light.page.evaluate(readPage);
    const cell = await focusedCell(light.page);
    await light.page.screenshot({ path: join(shots, 'light.png'), fullPage: true });
    say('keyed', {
      dom,
      cell,
      dark: { dom: darkDom, ...darkSeen },
      phone: { dom: phoneDom, ...phoneSeen },
      ...(await finish(light)),
    });

    // The database goes down while the page stays open.
    await light.page.evaluate(() => {
      window.__sameDocument = true;
    });
    say('ready', {});
    await expectLine('down');
    const started = Date.now();
    await light.page.waitForFunction(
      () => document.querySelector('li.comp[data-c="db"] .row .st')?.textContent === 'down'
        && document.querySelector('#overall strong')?.textContent === 'down'
        && [...document.querySelectorAll('#transitions > li')].some((li) => /\bdb\b/.test(li.textContent)),
      null,
      { timeout: DEADLINE_MS },
    );
    const after = await light.page.evaluate(readPage);
    await light.page.screenshot({ path: join(shots, 'light-db-down.png'), fullPage: true });
    say('live', { dom: after, waitedMs: Date.now() - started, ...(await finish(light)) });
    await light.context.close();
  } finally {
    await browser.close();
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e && e.stack ? e.stack : String(e));
    process.exit(1);
  },
);
