import { guestsClass, lxcConfigClass, sanityClass } from './class-files.js';
import {
  distroConf,
  distroInclude,
  layerConf,
  multiconfigConf,
  multiconfigInclude,
  templates,
} from './conf-files.js';
import type { LayerContext } from './context.js';
import { copying, readme } from './doc-files.js';
import type { LayerFile } from './file.js';
import { kasFile } from './kas-file.js';
import {
  dpdkBbappend,
  endpointFiles,
  hugepagesFiles,
  images,
  kernelFiles,
  lxcBbappend,
  lxcConfigRecipeFile,
  packagegroups,
  vipcCliRecipe,
} from './recipe-files.js';

/** Every file of the layer, unsorted. */
export function classFiles(c: LayerContext): LayerFile[] {
  const files: LayerFile[] = [
    readme(c),
    copying(),
    layerConf(c),
    distroConf(c),
    distroInclude(c),
    multiconfigInclude(c),
    ...c.t.containers.map((k) => multiconfigConf(c, k)),
    ...templates(c),
    sanityClass(c),
    guestsClass(c),
    lxcConfigClass(c),
    ...c.t.containers.map((k) => lxcConfigRecipeFile(c, k)),
    lxcBbappend(c),
    ...(c.t.hugepages ? hugepagesFiles(c) : []),
    ...endpointFiles(c, 'host'),
    ...endpointFiles(c, 'guest'),
    vipcCliRecipe(c),
    ...kernelFiles(c),
    ...packagegroups(c),
    ...images(c),
    kasFile(c),
  ];
  if (c.usesDpdk && c.o.physicalNics) files.push(dpdkBbappend(c));
  return files;
}
