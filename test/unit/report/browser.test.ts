/**
 * Renders report.html in headless Chromium (the Debian package) and checks what a reader sees: the ε plot,
 * decoded example images, no script, no network request. Leaves a full-page screenshot in a temp folder
 * (its path is printed) for a person to look at.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { test } from 'node:test';
import { buildReport } from '../../../report/build';
import {
  baseline,
  examplePixels,
  hardened,
  spec,
  suiteBaseline,
  suiteHardened,
  suiteSpec,
  suiteSummary,
  summary,
} from './fixture';

const CHROMIUM = '/usr/bin/chromium';
const skip = existsSync(CHROMIUM) ? false : `${CHROMIUM} is missing: install Debian's chromium to run this test`;

test(
  'report.html renders in headless Chromium with its plot and images, offline',
  { skip, timeout: 120_000 },
  async (t) => {
    const { chromium } = await import('playwright-core');
    const dir = mkdtempSync(join(tmpdir(), 'tempered-report-'));
    const file = join(dir, 'report.html');
    writeFileSync(
      file,
      await buildReport({
        summary,
        spec,
        baseline,
        hardened,
        examples: examplePixels(),
        generatedAt: new Date('2025-01-31T12:00:00Z'),
      }),
    );
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
      ],
    });
    try {
      const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
      const requests: string[] = [];
      page.on('request', (r) => {
        if (!r.url().startsWith('file:') && !r.url().startsWith('data:')) requests.push(r.url());
      });
      const dialogs: string[] = [];
      page.on('dialog', async (d) => {
        dialogs.push(d.message());
        await d.dismiss();
      });
      await page.goto(pathToFileURL(file).href, { waitUntil: 'load' });

      const title = await page.title();
      assert.ok(title.includes('<script>'), `the title shows the model name as text: ${title}`);
      assert.equal(await page.locator('script').count(), 0, 'no script element in the DOM');

      const plot = page.locator('svg.plot');
      await plot.waitFor({ state: 'visible' });
      const box = await plot.boundingBox();
      assert.ok(box && box.width > 500 && box.height > 150, `plot box ${JSON.stringify(box)}`);
      assert.equal(await page.locator('svg.plot path.series').count(), 2);

      // tsconfig has no DOM lib: describe the few image properties read in the page.
      type Img = { naturalWidth: number; naturalHeight: number; getBoundingClientRect(): { width: number } };
      const images = await page.locator('img').evaluateAll((els) =>
        (els as unknown as Img[]).map((img) => ({
          w: img.naturalWidth,
          h: img.naturalHeight,
          shown: img.getBoundingClientRect().width,
        })),
      );
      assert.equal(images.length, 18);
      for (const img of images) {
        assert.equal(img.w, 112, 'decoded 28 px upscaled ×4');
        assert.equal(img.h, 112);
        assert.ok(img.shown > 50, 'laid out at a visible size');
      }
      assert.ok(await page.locator('text=PASSED').isVisible());
      assert.equal(await page.locator('table.confusion td.cm').count(), 100);

      const shot = join(dir, 'report.png');
      await page.screenshot({ path: shot, fullPage: true });
      t.diagnostic(`screenshot: ${shot}`);
      assert.deepEqual(requests, [], 'no network requests');
      assert.deepEqual(dialogs, [], 'no alert ran');
    } finally {
      await browser.close();
    }
  },
);

test(
  'a suite run shows its worst-case headline, the waterfall bars and the sanity panel in Chromium',
  { skip, timeout: 120_000 },
  async (t) => {
    const { chromium } = await import('playwright-core');
    const dir = mkdtempSync(join(tmpdir(), 'tempered-report-suite-'));
    const file = join(dir, 'report.html');
    writeFileSync(
      file,
      await buildReport({
        summary: suiteSummary,
        spec: suiteSpec,
        baseline: suiteBaseline,
        hardened: suiteHardened,
        examples: examplePixels(),
        generatedAt: new Date('2025-01-31T12:00:00Z'),
      }),
    );
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
    try {
      const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
      await page.goto(pathToFileURL(file).href, { waitUntil: 'load' });
      const headline = page.locator('.worst-case .wc-value');
      assert.equal(await headline.textContent(), '57.6%');
      assert.ok(await headline.isVisible());
      // The headline sits above the gate, where a reader looks first.
      const [wc, gate] = await Promise.all([headline.boundingBox(), page.locator('section.gate').boundingBox()]);
      assert.ok(wc && gate && wc.y < gate.y, 'the worst case comes before the gate decision');
      // Waterfall bars: the robust part shrinks attack by attack (widths in px).
      const kept = await page
        .locator('.waterfall .wf-kept')
        .evaluateAll((els) =>
          (els as unknown as { getBoundingClientRect(): { width: number } }[]).map(
            (e) => e.getBoundingClientRect().width,
          ),
        );
      assert.equal(kept.length, 6);
      for (let i = 1; i < kept.length; i++) assert.ok(kept[i] <= kept[i - 1] + 0.5, `bar ${i}: ${kept.join(', ')}`);
      assert.ok(kept[0] > kept[1] + 20, 'apgd-ce visibly broke points');
      assert.equal(await page.locator('table.sanity tbody tr').count(), 8);
      const shot = join(dir, 'report.png');
      await page.screenshot({ path: shot, fullPage: true });
      t.diagnostic(`screenshot: ${shot}`);
    } finally {
      await browser.close();
    }
  },
);
