/**
 * The package's entry at run time (package.json "exports"): everything index.ts exports, the same
 * objects, but the transports, the container runtime and fsck are loaded on their first use. A command
 * pays for loading every module it imports, run or not: before this, a fully cached build spent about a
 * third of its time loading registry, archive-writer, seccomp and runtime code it never ran. The types
 * stay index.d.ts's; test/library.test.ts checks that this file exports exactly index.ts's names and
 * values, so a new export of a lazy module must be added below.
 *
 * The getters are spelled out one per name, in the form Node's CommonJS export scanner recognises, so
 * `import { pullImage } from '@tsbuild/storage'` keeps working from ES modules.
 */
export * from './eager';

/** An object that loads the module on its first property read and forwards every read to it. */
function lazyModule<T extends object>(load: () => T): T {
  let loaded: T | undefined;
  return new Proxy({} as T, { get: (_target, key) => Reflect.get((loaded ??= load()), key) });
}

const transport = lazyModule(() => require('./transport') as typeof import('./transport'));
const runtime = lazyModule(() => require('./runtime') as typeof import('./runtime'));
// What `run` uses of the runtime, without the index's seccomp compiler (the default filter is precompiled).
const containerRuntime = lazyModule(() => require('./runtime/run') as typeof import('./runtime/run'));
const fsck = lazyModule(() => require('./fsck') as typeof import('./fsck'));

Object.defineProperty(exports, 'CONFIG_MAX', { enumerable: true, get: function () { return transport.CONFIG_MAX; } });
Object.defineProperty(exports, 'DEFAULT_GZIP_LEVEL', { enumerable: true, get: function () { return transport.DEFAULT_GZIP_LEVEL; } });
Object.defineProperty(exports, 'gzipLayer', { enumerable: true, get: function () { return transport.gzipLayer; } });
Object.defineProperty(exports, 'openUncompressedLayer', { enumerable: true, get: function () { return transport.openUncompressedLayer; } });
Object.defineProperty(exports, 'cacheLocationOf', { enumerable: true, get: function () { return transport.cacheLocationOf; } });
Object.defineProperty(exports, 'layoutCacheLocation', { enumerable: true, get: function () { return transport.layoutCacheLocation; } });
Object.defineProperty(exports, 'openRemoteBlob', { enumerable: true, get: function () { return transport.openRemoteBlob; } });
Object.defineProperty(exports, 'readCache', { enumerable: true, get: function () { return transport.readCache; } });
Object.defineProperty(exports, 'registryCacheLocation', { enumerable: true, get: function () { return transport.registryCacheLocation; } });
Object.defineProperty(exports, 'writeCache', { enumerable: true, get: function () { return transport.writeCache; } });
Object.defineProperty(exports, 'uncompressedSize', { enumerable: true, get: function () { return transport.uncompressedSize; } });
Object.defineProperty(exports, 'saveDockerArchive', { enumerable: true, get: function () { return transport.saveDockerArchive; } });
Object.defineProperty(exports, 'saveDockerOciArchive', { enumerable: true, get: function () { return transport.saveDockerOciArchive; } });
Object.defineProperty(exports, 'saveImages', { enumerable: true, get: function () { return transport.saveImages; } });
Object.defineProperty(exports, 'saveOciArchive', { enumerable: true, get: function () { return transport.saveOciArchive; } });
Object.defineProperty(exports, 'saveOciDir', { enumerable: true, get: function () { return transport.saveOciDir; } });
Object.defineProperty(exports, 'sinkFor', { enumerable: true, get: function () { return transport.sinkFor; } });
Object.defineProperty(exports, 'IMAGE_SINKS', { enumerable: true, get: function () { return transport.IMAGE_SINKS; } });
Object.defineProperty(exports, 'findSink', { enumerable: true, get: function () { return transport.findSink; } });
Object.defineProperty(exports, 'sinkNames', { enumerable: true, get: function () { return transport.sinkNames; } });
Object.defineProperty(exports, 'planOciLayout', { enumerable: true, get: function () { return transport.planOciLayout; } });
Object.defineProperty(exports, 'importImages', { enumerable: true, get: function () { return transport.importImages; } });
Object.defineProperty(exports, 'loadArchive', { enumerable: true, get: function () { return transport.loadArchive; } });
Object.defineProperty(exports, 'ArchiveWriter', { enumerable: true, get: function () { return transport.ArchiveWriter; } });
Object.defineProperty(exports, 'readArchiveMembers', { enumerable: true, get: function () { return transport.readArchiveMembers; } });
Object.defineProperty(exports, 'writeArchiveFile', { enumerable: true, get: function () { return transport.writeArchiveFile; } });
Object.defineProperty(exports, 'RegistryClient', { enumerable: true, get: function () { return transport.RegistryClient; } });
Object.defineProperty(exports, 'RegistryError', { enumerable: true, get: function () { return transport.RegistryError; } });
Object.defineProperty(exports, 'isLoopback', { enumerable: true, get: function () { return transport.isLoopback; } });
Object.defineProperty(exports, 'authFilePaths', { enumerable: true, get: function () { return transport.authFilePaths; } });
Object.defineProperty(exports, 'findCredentials', { enumerable: true, get: function () { return transport.findCredentials; } });
Object.defineProperty(exports, 'parseChallenge', { enumerable: true, get: function () { return transport.parseChallenge; } });
Object.defineProperty(exports, 'pushImage', { enumerable: true, get: function () { return transport.pushImage; } });
Object.defineProperty(exports, 'pullImage', { enumerable: true, get: function () { return transport.pullImage; } });
Object.defineProperty(exports, 'runContainer', { enumerable: true, get: function () { return containerRuntime.runContainer; } });
Object.defineProperty(exports, 'createCgroup', { enumerable: true, get: function () { return runtime.createCgroup; } });
Object.defineProperty(exports, 'detectCgroupVersion', { enumerable: true, get: function () { return runtime.detectCgroupVersion; } });
Object.defineProperty(exports, 'removeStaleCgroups', { enumerable: true, get: function () { return runtime.removeStaleCgroups; } });
Object.defineProperty(exports, 'DEFAULT_DEVICE_RULES', { enumerable: true, get: function () { return runtime.DEFAULT_DEVICE_RULES; } });
Object.defineProperty(exports, 'containerSteps', { enumerable: true, get: function () { return runtime.containerSteps; } });
Object.defineProperty(exports, 'thermalThrottlePaths', { enumerable: true, get: function () { return runtime.thermalThrottlePaths; } });
Object.defineProperty(exports, 'DOCKER_MASKED_PATHS', { enumerable: true, get: function () { return runtime.DOCKER_MASKED_PATHS; } });
Object.defineProperty(exports, 'DOCKER_READONLY_PATHS', { enumerable: true, get: function () { return runtime.DOCKER_READONLY_PATHS; } });
Object.defineProperty(exports, 'DEFAULT_DEVICES', { enumerable: true, get: function () { return runtime.DEFAULT_DEVICES; } });
Object.defineProperty(exports, 'resolveUser', { enumerable: true, get: function () { return runtime.resolveUser; } });
Object.defineProperty(exports, 'resolveRootfsUser', { enumerable: true, get: function () { return runtime.resolveRootfsUser; } });
Object.defineProperty(exports, 'readRootfsEtcFile', { enumerable: true, get: function () { return runtime.readRootfsEtcFile; } });
Object.defineProperty(exports, 'lookupUser', { enumerable: true, get: function () { return runtime.lookupUser; } });
Object.defineProperty(exports, 'parsePasswd', { enumerable: true, get: function () { return runtime.parsePasswd; } });
Object.defineProperty(exports, 'parseGroup', { enumerable: true, get: function () { return runtime.parseGroup; } });
Object.defineProperty(exports, 'capabilitySet', { enumerable: true, get: function () { return containerRuntime.capabilitySet; } });
Object.defineProperty(exports, 'allCapabilities', { enumerable: true, get: function () { return containerRuntime.allCapabilities; } });
Object.defineProperty(exports, 'hostDeviceSteps', { enumerable: true, get: function () { return runtime.hostDeviceSteps; } });
Object.defineProperty(exports, 'containerSeccomp', { enumerable: true, get: function () { return runtime.containerSeccomp; } });
Object.defineProperty(exports, 'seccompOptionFromFlag', { enumerable: true, get: function () { return runtime.seccompOptionFromFlag; } });
Object.defineProperty(exports, 'compileFilter', { enumerable: true, get: function () { return runtime.compileFilter; } });
Object.defineProperty(exports, 'resolveProfile', { enumerable: true, get: function () { return runtime.resolveProfile; } });
Object.defineProperty(exports, 'parseProfile', { enumerable: true, get: function () { return runtime.parseProfile; } });
Object.defineProperty(exports, 'checkProfile', { enumerable: true, get: function () { return runtime.checkProfile; } });
Object.defineProperty(exports, 'DOCKER_DEFAULT_PROFILE', { enumerable: true, get: function () { return runtime.DOCKER_DEFAULT_PROFILE; } });
Object.defineProperty(exports, 'DOCKER_PROFILE_VERSION', { enumerable: true, get: function () { return runtime.DOCKER_PROFILE_VERSION; } });
Object.defineProperty(exports, 'SeccompProfileError', { enumerable: true, get: function () { return runtime.SeccompProfileError; } });
Object.defineProperty(exports, 'SeccompCompileError', { enumerable: true, get: function () { return runtime.SeccompCompileError; } });
Object.defineProperty(exports, 'execInContainer', { enumerable: true, get: function () { return runtime.execInContainer; } });
Object.defineProperty(exports, 'cgroupProcsOf', { enumerable: true, get: function () { return runtime.cgroupProcsOf; } });
Object.defineProperty(exports, 'fsck', { enumerable: true, get: function () { return fsck.fsck; } });
