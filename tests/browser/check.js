// check.js PROFILE NAME[,NAME...] [SCREENSHOT.png]
// Opens PROFILE (Chrome JSON or .pb.gz) in speedscope's release build, from
// a file: URL, in Debian's chromium (headless), driven by playwright-core,
// the way speedscope's own CLI hands it a file (loadFileFromBase64). Walks
// every profile of the file (one per thread) in the Sandwich view, whose
// table of names is DOM text, and checks that every NAME appears. Exits 0
// when all appear, 1 when some do not, 2 on a setup error. With SCREENSHOT,
// also saves the Time Order view of the profile where the last NAME showed.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const { chromium } = require('playwright-core');

const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
               '--disable-background-networking', '--disable-component-update', '--disable-sync'];

async function main() {
  const [profile, namesArg, shot] = process.argv.slice(2);
  if (!profile || !namesArg) {
    console.error('usage: check.js PROFILE NAME[,NAME...] [SCREENSHOT.png]');
    return 2;
  }
  const want = namesArg.split(',');
  const exe = process.env.CHROMIUM || '/usr/bin/chromium';
  const release = path.join(__dirname, 'node_modules/speedscope/dist/release/index.html');
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'fr-browser-'));
  const loader = path.join(work, 'load.js');
  const b64 = fs.readFileSync(profile).toString('base64');
  fs.writeFileSync(loader, `speedscope.loadFileFromBase64(${JSON.stringify(path.basename(profile))}, ${JSON.stringify(b64)})`);

  // A new, empty profile directory for this run only.
  const userData = path.join(work, 'user-data');
  fs.mkdirSync(userData);
  const ctx = await chromium.launchPersistentContext(userData, {
    executablePath: exe, headless: false, args: FLAGS, viewport: { width: 1400, height: 420 },
  });
  const errors = [];
  try {
    const page = ctx.pages()[0] || await ctx.newPage();
    page.on('pageerror', e => errors.push(String(e)));
    const url = 'file://' + release + '#localProfilePath=' + encodeURIComponent(loader);
    await page.goto(url);
    // Loaded once the view tabs are there.
    await page.getByText('Sandwich').first().waitFor({ timeout: 30000 });
    await page.waitForTimeout(500);
    await page.getByText('Sandwich').first().click();
    await page.waitForTimeout(300);
    const seen = new Set();
    let firstText = null;
    // One profile per thread: 'n' steps to the next, until we are back.
    for (let i = 0; i < 64; i++) {
      const text = await page.evaluate(() => document.body.innerText);
      if (text === firstText)
        break;
      if (firstText === null)
        firstText = text;
      for (const n of want)
        if (text.includes(n))
          seen.add(n);
      if (seen.size === want.length)
        break;
      await page.keyboard.press('n');
      await page.waitForTimeout(200);
    }
    const missing = want.filter(n => !seen.has(n));
    if (shot && !missing.length) {
      // The profile that showed the last names, in the Time Order view.
      await page.getByText('Time Order').first().click();
      await page.waitForTimeout(800);
      await page.screenshot({ path: shot });
    }
    if (errors.length)
      console.error('page errors: ' + errors.join('; '));
    if (missing.length) {
      console.error(`check.js: ${profile}: not shown by speedscope: ${missing.join(', ')}`);
      console.error('last page text: ' + (await page.evaluate(() => document.body.innerText)).slice(0, 600));
      return 1;
    }
    console.log(`check.js: ${path.basename(profile)}: speedscope shows ${want.join(', ')}`);
    return 0;
  } finally {
    await ctx.close();
    fs.rmSync(work, { recursive: true, force: true });
  }
}

main().then(code => process.exit(code), e => { console.error('check.js: ' + (e && e.stack || e)); process.exit(2); });
