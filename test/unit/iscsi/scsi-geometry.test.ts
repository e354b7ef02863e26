import t from 'tap';
import { geometryOf } from '../../../blockdev/iscsi/scsi/scsi-geometry.js';
import { MemoryBlockDevice } from '../../helpers/memory-block-device.js';
import { fakeExportDescription } from './helpers/scsi-fixture.js';

/** The geometry derived from an export (the range lock is blockdev/volume/range-lock.ts, tested there and in iscsi-data-path). */

t.test('geometry: 512-byte blocks unless the device needs larger ones', async (t) => {
  const device = new MemoryBlockDevice({ sizeBytes: 1024 * 1024 + 100, blockSize: { preferredBytes: 4096, maximumBytes: 64 * 1024 * 1024 } });
  const geometry = geometryOf(fakeExportDescription(device));
  t.equal(geometry.blockBytes, 512);
  t.equal(geometry.blockCount, 2048n, 'a trailing partial block is not exposed');
  t.equal(geometry.granularityBlocks, 8);
  t.equal(geometry.maxTransferBlocks, (8 * 1024 * 1024) / 512, 'capped at 8 MiB per command');
  t.equal(geometry.maxWriteSameBlocks, geometry.maxTransferBlocks);
  t.ok(geometry.thinProvisioned && geometry.readsZeroAfterUnmap);
  const large = new MemoryBlockDevice({ sizeBytes: 1024 * 1024, blockSize: { minimumBytes: 4096 } });
  t.equal(geometryOf(fakeExportDescription(large)).blockBytes, 4096);
  const odd = new MemoryBlockDevice({ sizeBytes: 1024 * 1024, blockSize: { minimumBytes: 3000 } });
  t.equal(geometryOf(fakeExportDescription(odd)).blockBytes, 512, 'not a power of two: 512');
  const readOnly = geometryOf(fakeExportDescription(device, { readOnly: true }));
  t.equal(readOnly.thinProvisioned, false, 'a read-only export offers no UNMAP');
});
