/// pytorch_model.bin written by PyTorch's own torch.save (zip format, legacy format, sharded with its
/// index; ../shared/fixtures/pickled/hf-gpt2) loads to the hf-gpt2 oracle's logits; anything that is not
/// a plain state dict is refused by name.
module Lens.Tests.PickledCheckpointTests

open System
open System.IO
open System.IO.Compression
open Expecto
open TorchSharp
open Lens
open Lens.IO
open Lens.Pretrained
open Lens.Tests.TestSupport
open Lens.Tests.ParityTests
open Lens.Tests.WeightProcessingTests

let private pickled () = requireShared "fixtures/pickled/hf-gpt2"
let private oracle = lazy (Oracle "hf-gpt2")

let private scratch = scratchFolder "lens-pickled-tests"

let private tempFolder (label: string) = freshFolderIn scratch label

/// A folder with hf-gpt2's config.json and the given files copied in under the given names.
let private folderWith (label: string) (files: (string * string) list) =
    let dir = tempFolder label
    File.Copy(Path.Combine(pickled (), "config.json"), Path.Combine(dir, "config.json"))
    for (source, name) in files do File.Copy(source, Path.Combine(dir, name))
    dir

/// Every tensor equals model.safetensors' bit for bit (names, shapes and dtypes included), and the unprocessed logits
/// match.
let private loadsLikeSafetensors (label: string) (dir: string) =
    use reference = SafetensorsFile.Open(Path.Combine(oracle.Value.Dir, "model.safetensors"))
    use ckpt = CheckpointWeights.Open dir
    Expect.equal (set ckpt.Names) (set reference.Names) (label + ": the same tensor names")
    for name in reference.Names do
        Expect.equal (ckpt.StoredDtype name) reference.Entries.[name].Dtype (label + ": dtype of " + name)
        use a = ckpt.Load(name, torch.float32)
        use b = reference.Load name
        Expect.equal a.shape b.shape (label + ": shape of " + name)
        Expect.isTrue (a.allclose(b, 0.0, 0.0)) (label + ": values of " + name)
    let expected = oracle.Value.Expected "expected.safetensors"
    use model = HubLayoutLoader.Load(dir, LoadOptions(ProcessWeights = false))
    use logits = model.Forward(expected.["tokens"])
    closeAndMeasured 1e-5 (sprintf "pickled hf-gpt2 (%s) logits" label) logits expected.["logits"]
    use processed = HubLayoutLoader.Load dir
    use processedLogits = processed.Forward(expected.["tokens"])
    closeAndMeasured 1e-5 (sprintf "pickled hf-gpt2 (%s) processed logits" label) processedLogits
        expected.["processed.logits"]
    disposeAll expected

/// A zip laid out as torch.save writes it, whose data.pkl is the given pickle.
let private zipWithPickle (path: string) (pickle: byte[]) =
    use zip = ZipFile.Open(path, ZipArchiveMode.Create)
    use s = zip.CreateEntry("archive/data.pkl").Open()
    s.Write(pickle, 0, pickle.Length)

let private refused (dir: string) =
    messageOf<CheckpointException> (fun () -> (CheckpointWeights.Open dir).Dispose())

[<Tests>]
let tests =
    testList "pickled checkpoints" [
        testCase ("zip format (torch.save since 1.6): tensors equal model.safetensors and logits match hf-gpt2 within "
                  + "1e-5") <| fun () ->
            let dir = folderWith "zip" [ Path.Combine(pickled (), "pytorch_model.bin"), "pytorch_model.bin" ]
            try loadsLikeSafetensors "zip" dir finally Directory.Delete(dir, true)

        testCase "legacy format (before 1.6): tensors equal model.safetensors and logits match hf-gpt2 within 1e-5"
        <| fun () ->
            let dir = folderWith "legacy" [ Path.Combine(pickled (), "pytorch_model.legacy.bin"), "pytorch_model.bin" ]
            try loadsLikeSafetensors "legacy" dir finally Directory.Delete(dir, true)

        testCase ("sharded with pytorch_model.bin.index.json: tensors equal model.safetensors and logits match hf-gpt2 "
                  + "within 1e-5") <| fun () ->
            loadsLikeSafetensors "sharded" (Path.Combine(pickled (), "sharded"))

        testCase "safetensors is preferred when both exist" <| fun () ->
            let dir = folderWith "both" [ Path.Combine(oracle.Value.Dir, "model.safetensors"), "model.safetensors" ]
            try
                File.WriteAllText(Path.Combine(dir, "pytorch_model.bin"), "not read: safetensors comes first")
                use model = HubLayoutLoader.Load(dir, LoadOptions(ProcessWeights = false))
                Expect.equal model.Config.NLayers 2 "loaded from model.safetensors"
            finally Directory.Delete(dir, true)

        testCase "a pickle that is not a plain state dict, or not a torch.save file at all, is refused by name"
        <| fun () ->
            let dir = tempFolder "bad"
            try
                let bin = Path.Combine(dir, "pytorch_model.bin")
                // {'a': 1}: EMPTY_DICT, BINUNICODE 'a', BININT1 1, SETITEM, STOP
                zipWithPickle bin [| 0x80uy; 2uy; byte '}'; byte 'X'; 1uy; 0uy; 0uy; 0uy; byte 'a'; byte 'K'; 1uy;
                                     byte 's'; byte '.' |]
                Expect.stringContains (refused dir) "'a' holds a Int32, not a tensor" "a value that is not a tensor"
                File.Delete bin
                // ['a']: a list, not a dict
                zipWithPickle bin [| 0x80uy; 2uy; byte ']'; byte 'X'; 1uy; 0uy; 0uy; 0uy; byte 'a'; byte 'a';
                                     byte '.' |]
                Expect.stringContains (refused dir) "not a state dict" "a list"
                File.Delete bin
                File.WriteAllBytes(bin, Array.init 64 byte)
                Expect.stringContains (refused dir) "pytorch_model.bin" "garbage names the file"
            finally Directory.Delete(dir, true)
    ]
