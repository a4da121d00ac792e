#!/usr/bin/env node
// The `sluice` command. Plain JavaScript so that an old Node gets a clear message rather than a
// syntax error: Sluice's sources are TypeScript, run by Node ≥ 24 directly.
const major = Number(process.versions.node.split('.')[0]);
if (major < 24) {
  process.stderr.write(
    `sluice: this is Node ${process.versions.node}; Sluice needs Node 24 or newer.\n` +
      `  hint: run it through npm (\`npx sluice\`, \`npm start\`), which uses the Node 24 installed in node_modules, or install Node 24.\n`,
  );
  process.exit(2);
}
await import('../src/cli/main.ts');
