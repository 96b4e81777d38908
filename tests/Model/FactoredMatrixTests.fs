/// FactoredMatrix, the full circuits and the copying scores, against dense computations.
module Lens.Tests.FactoredMatrixTests

open System
open Expecto
open TorchSharp
open Lens
open Lens.Analysis
open Lens.Tests.TestSupport
open Lens.Tests.ParityTests

let randn (g: torch.Generator) (shape: int64 list) =
    torch.randn(Array.ofList shape, dtype = torch.float64, generator = g)

let values (t: torch.Tensor) = use c = t.to_type(torch.float64).cpu().contiguous() in c.data<float>().ToArray()

/// Complex eigenvalues as (re, im) pairs.
let complexValues (t: torch.Tensor) =
    use re = t.real
    use im = t.imag
    Array.zip (values re) (values im)

/// Every expected eigenvalue has a distinct actual one within tol.
let expectSameMultiset tol what (actual: (float * float)[]) (expected: (float * float)[]) =
    let used = Array.zeroCreate actual.Length
    for (er, ei) in expected do
        let dist k = let (r, i) = actual.[k] in sqrt ((r - er) ** 2.0 + (i - ei) ** 2.0)
        let free = [| 0 .. actual.Length - 1 |] |> Array.filter (fun k -> not used.[k])
        Expect.isNonEmpty free (sprintf "%s: more expected eigenvalues than actual ones" what)
        let best = free |> Array.minBy dist
        if dist best > tol then
            failtestf "%s: no eigenvalue near (%g, %g); nearest differs by %g" what er ei (dist best)
        used.[best] <- true

/// A model whose layer-0 heads are built by hand: head 0 copies (OV = projection onto the first d_head dims),
/// head 1 anti-copies (OV = minus that projection); W_U = W_Eᵀ so the full OV circuit of head 0 is W_E·P·W_Eᵀ.
let copyingModel () =
    let cfg =
        HookedTransformerConfig(NLayers = 1, DModel = 8, DHead = 4, NHeads = 2, NCtx = 16, DVocab = 8, AttnOnly = true,
                                Seed = Nullable 5)
    let model = new HookedTransformer(cfg)
    use _ = torch.no_grad()
    let attn = model.blocks.[0].attn
    use eye = torch.eye(4L)
    use zero = torch.zeros(4L, 4L)
    use wV = torch.cat([| eye; zero |], 0L)        // [d_model, d_head]
    use wO = torch.cat([| eye; zero |], 1L)        // [d_head, d_model]
    attn.W_V.select(0L, 0L).copy_(wV) |> ignore
    attn.W_O.select(0L, 0L).copy_(wO) |> ignore
    attn.W_V.select(0L, 1L).copy_(wV) |> ignore
    use negated = -wO
    attn.W_O.select(0L, 1L).copy_(negated) |> ignore
    use wET = model.W_E.t()
    model.W_U.copy_(wET) |> ignore
    model

[<Tests>]
let tests =
    testList "factored matrices and circuits" [
        testCase "AB, BA, transpose, shape and indexing of the leading dimensions" <| fun () ->
            use g = new torch.Generator(11UL)
            use a = randn g [ 3L; 5L; 2L ]
            use b = randn g [ 3L; 2L; 5L ]
            use m = new FactoredMatrix(a, b)
            Expect.sequenceEqual m.Shape [| 3L; 5L; 5L |] "shape = leading dims, ldim, rdim"
            Expect.equal (m.Ndim, m.Ldim, m.Mdim, m.Rdim) (4 - 1, 5L, 2L, 5L) "ndim, ldim, mdim, rdim"
            use ab = m.AB
            use dense = a.matmul(b)
            expectClose 1e-12 "AB" ab dense
            use ba = m.BA
            use denseBa = b.matmul(a)
            expectClose 1e-12 "BA" ba denseBa
            use t = m.T
            use tab = t.AB
            use denseT = dense.transpose(-2L, -1L)
            expectClose 1e-12 "T" tab denseT
            use one = m.[1L]
            use oneAb = one.AB
            use dense1 = dense.select(0L, 1L)
            expectClose 1e-12 "m[1]" oneAb dense1
            use last = m.[-1L]
            use lastAb = last.AB
            use dense2 = dense.select(0L, 2L)
            expectClose 1e-12 "m[-1]" lastAb dense2
            use u = m.Unsqueeze(0L)
            Expect.sequenceEqual u.Shape [| 1L; 3L; 5L; 5L |] "unsqueeze adds a leading dimension"

        testCase "leading dimensions broadcast between the factors" <| fun () ->
            use g = new torch.Generator(12UL)
            use a = randn g [ 4L; 1L; 6L; 3L ]
            use b = randn g [ 5L; 3L; 6L ]
            use m = new FactoredMatrix(a, b)
            Expect.sequenceEqual m.Shape [| 4L; 5L; 6L; 6L |] "broadcast shape"
            use ab = m.AB
            use dense = a.matmul(b)
            expectClose 1e-12 "broadcast AB" ab dense

        testCase ("SVD without forming AB: U·diag(S)·Vhᵀ = AB, S = dense singular values, orthonormal columns, "
                  + "Frobenius norm") <| fun () ->
            use g = new torch.Generator(13UL)
            use a = randn g [ 2L; 9L; 3L ]
            use b = randn g [ 2L; 3L; 7L ]
            use m = new FactoredMatrix(a, b)
            use svd = m.Svd()
            Expect.sequenceEqual svd.U.shape [| 2L; 9L; 3L |] "U [.., ldim, k]"
            Expect.sequenceEqual svd.S.shape [| 2L; 3L |] "S [.., k]"
            Expect.sequenceEqual svd.Vh.shape [| 2L; 7L; 3L |] "Vh [.., rdim, k] (TransformerLens's V)"
            use rebuilt = (svd.U * svd.S.unsqueeze(-2L)).matmul(svd.Vh.transpose(-2L, -1L))
            use dense = a.matmul(b)
            expectClose 1e-10 "U·diag(S)·Vhᵀ" rebuilt dense
            use denseS = torch.linalg.svdvals(dense)
            use topS = denseS.narrow(-1L, 0L, 3L)
            expectClose 1e-10 "S" svd.S topS
            use utu = svd.U.transpose(-2L, -1L).matmul(svd.U)
            use vtv = svd.Vh.transpose(-2L, -1L).matmul(svd.Vh)
            use eye = torch.eye(3L, dtype = torch.float64).expand(2L, 3L, 3L)
            expectClose 1e-10 "UᵀU = I" utu eye
            expectClose 1e-10 "VhᵀVh = I" vtv eye
            use norm = m.Norm()
            use denseNorm = dense.pow(torch.tensor(2.0)).sum([| -2L; -1L |]).sqrt()
            expectClose 1e-10 "norm = Frobenius" norm denseNorm
            use cl = m.CollapseL()
            use cr = m.CollapseR()
            Expect.sequenceEqual cl.shape [| 2L; 3L; 7L |] "collapse_l [.., k, rdim]"
            Expect.sequenceEqual cr.shape [| 2L; 9L; 3L |] "collapse_r [.., ldim, k]"
            use clGram = cl.transpose(-2L, -1L).matmul(cl)
            use denseGram = dense.transpose(-2L, -1L).matmul(dense)
            expectClose 1e-10 "collapse_l keeps AᵀA-style Gram matrix (only U removed)" clGram denseGram
            use even = m.MakeEven()
            use evenAb = even.AB
            expectClose 1e-10 "make_even is the same matrix" evenAb dense

        testCase "eigenvalues of the small side B·A are the nonzero eigenvalues of A·B" <| fun () ->
            use g = new torch.Generator(14UL)
            use a = randn g [ 10L; 4L ]
            use b = randn g [ 4L; 10L ]
            use m = new FactoredMatrix(a, b)
            use eig = m.Eigenvalues
            Expect.sequenceEqual eig.shape [| 4L |] "mdim eigenvalues"
            Expect.isTrue (eig.is_complex()) "complex, as torch.linalg.eig"
            use dense = a.matmul(b)
            use denseEig = torch.linalg.eigvals(dense)
            let big = complexValues denseEig |> Array.sortByDescending (fun (r, i) -> r * r + i * i) |> Array.take 4
            expectSameMultiset 1e-8 "eigenvalues" (complexValues eig) big

        testCase "products with matrices, vectors and factored matrices on either side equal the dense products"
        <| fun () ->
            use g = new torch.Generator(15UL)
            use a = randn g [ 6L; 2L ]
            use b = randn g [ 2L; 6L ]
            use m = new FactoredMatrix(a, b)
            use dense = a.matmul(b)
            use right = randn g [ 6L; 8L ]
            use left = randn g [ 5L; 6L ]
            use mr = m * right
            Expect.equal mr.Mdim 2L "rdim > mdim: stays factored through mdim"
            use mrAb = mr.AB
            use denseMr = dense.matmul(right)
            expectClose 1e-10 "this · matrix" mrAb denseMr
            use lm = left * m
            Expect.equal lm.Mdim 2L "ldim > mdim: stays factored through mdim"
            use lmAb = lm.AB
            use denseLm = left.matmul(dense)
            expectClose 1e-10 "matrix · this" lmAb denseLm
            use narrow = randn g [ 6L; 1L ]
            use collapsed = m * narrow
            use collapsedAb = collapsed.AB
            use denseNarrow = dense.matmul(narrow)
            expectClose 1e-10 "rdim ≤ mdim: (AB)·other" collapsedAb denseNarrow
            use otherA = randn g [ 6L; 3L ]
            use otherB = randn g [ 3L; 4L ]
            use other = new FactoredMatrix(otherA, otherB)
            use otherDense = other.AB
            use mm = m * other
            use mmAb = mm.AB
            use denseMm = dense.matmul(otherDense)
            expectClose 1e-10 "factored · factored" mmAb denseMm
            use v = randn g [ 6L ]
            use mv = m.MultiplyVector(v)
            use denseMv = dense.matmul(v)
            expectClose 1e-10 "this · vector" mv denseMv
            use vm = m.VectorMultiply(v)
            use denseVm = v.matmul(dense)
            expectClose 1e-10 "vector · this" vm denseVm
            use scaled = m * 2.5
            use scaledAb = scaled.AB
            use denseScaled = dense * 2.5
            expectClose 1e-10 "scaling" scaledAb denseScaled
            use corner = m.GetCorner(3)
            use denseCorner = dense.narrow(0L, 0L, 3L).narrow(1L, 0L, 3L)
            expectClose 1e-10 "corner" corner denseCorner

        testCase "bad shapes and indices are clear errors" <| fun () ->
            use a = torch.zeros(4L, 3L)
            use b = torch.zeros(2L, 4L)
            Expect.throwsT<ArgumentException> (fun () -> new FactoredMatrix(a, b) |> ignore) "inner dimensions differ"
            use a2 = torch.zeros(2L, 4L, 3L)
            use b2 = torch.zeros(3L, 3L, 4L)
            Expect.throwsT<ArgumentException> (fun () -> new FactoredMatrix(a2, b2) |> ignore)
                "leading dimensions do not broadcast"
            use b3 = torch.zeros(3L, 5L)
            use m = new FactoredMatrix(a, b3)
            Expect.throwsT<InvalidOperationException> (fun () -> m.BA |> ignore) "B·A of a non-square matrix"
            Expect.throwsT<ArgumentException> (fun () -> m.[0L] |> ignore) "indexing past the leading dimensions"
            use wrong = torch.zeros(4L, 2L)
            Expect.throwsT<ArgumentException> (fun () -> (m * wrong) |> ignore) "right factor of the wrong height"
            use vec = torch.zeros(5L)
            Expect.throwsT<ArgumentException> (fun () -> (m * vec) |> ignore) "a vector goes through MultiplyVector"

        testCase ("model.OV and model.QK are W_V·W_O and W_Q·W_Kᵀ per head; full and positional circuits equal the "
                  + "dense products") <| fun () ->
            use model = (Oracle "gpt2like").Model()
            use ov = model.OV
            use qk = model.QK
            Expect.sequenceEqual ov.Shape [| 2L; 4L; 64L; 64L |] "OV [n_layers, n_heads, d_model, d_model]"
            use wV = model.W_V
            use wO = model.W_O
            use wQ = model.W_Q
            use wK = model.W_K
            use ovAb = ov.AB
            use denseOv = wV.matmul(wO)
            expectClose 1e-6 "OV" ovAb denseOv
            use qkAb = qk.AB
            use denseQk = wQ.matmul(wK.transpose(-2L, -1L))
            expectClose 1e-6 "QK" qkAb denseQk
            use fullOv = Circuits.FullOvCircuit(model)
            Expect.sequenceEqual fullOv.Shape [| 2L; 4L; 97L; 97L |] "full OV of every head"
            Expect.equal fullOv.Mdim 16L "kept factored through d_head"
            use headOv = Circuits.FullOvCircuit(model, 1, 2)
            use headAb = headOv.AB
            use denseFull = model.W_E.matmul(denseOv.select(0L, 1L).select(0L, 2L)).matmul(model.W_U)
            expectClose 1e-5 "full OV L1H2" headAb denseFull
            use fullQk = Circuits.FullQkCircuit(model, 0, 3)
            use fullQkAb = fullQk.AB
            use denseFullQk = model.W_E.matmul(denseQk.select(0L, 0L).select(0L, 3L)).matmul(model.W_E.t())
            expectClose 1e-5 "full QK L0H3" fullQkAb denseFullQk
            use posQk = Circuits.PositionalQkCircuit(model, 1, 0)
            use posQkAb = posQk.AB
            use densePosQk = model.W_pos.matmul(denseQk.select(0L, 1L).select(0L, 0L)).matmul(model.W_pos.t())
            expectClose 1e-5 "positional QK L1H0" posQkAb densePosQk
            use posOv = Circuits.PositionalOvCircuit(model)
            Expect.sequenceEqual posOv.Shape [| 2L; 4L; 32L; 97L |] "positional OV [.., n_ctx, d_vocab_out]"
            Expect.throwsT<ArgumentOutOfRangeException> (fun () -> Circuits.FullOvCircuit(model, 2, 0) |> ignore)
                "layer out of range"

        testCase ("copying scores: Re(Σλ)/Σ|λ| is 1 for a head that copies and −1 for one that negates; "
                  + "positive-eigenvalue fraction 1 and 0") <| fun () ->
            use model = copyingModel ()
            use ovScores = Composition.OvCopyingScores(model)
            use expected = torch.tensor([| 1.0f; -1.0f |]).reshape(1L, 2L)
            expectClose 1e-5 "OV copying scores" ovScores expected
            use fullScores = Composition.FullOvCopyingScores(model)
            expectClose 1e-5 "full OV copying scores" fullScores expected
            use fraction = Composition.FullOvPositiveEigenvalueFraction(model)
            use expectedFraction = torch.tensor([| 1.0f; 0.0f |]).reshape(1L, 2L)
            expectClose 1e-6 "positive-eigenvalue fraction" fraction expectedFraction
            use realModel = (Oracle "gpt2like").Model()
            use scores = Composition.OvCopyingScores(realModel)
            Expect.sequenceEqual scores.shape [| 2L; 4L |] "[n_layers, n_heads]"
            Expect.isTrue (scores.abs().le(torch.tensor(1.0f)).all().item<bool>()) "scores lie in [-1, 1]"
            use viaSmallSide = Composition.FullOvCopyingScores(realModel)
            use full = Circuits.FullOvCircuit(realModel)
            use viaFactored = Composition.CopyingScore(full)
            expectClose 1e-4 "full OV copying scores from W_O·(W_U·W_E)·W_V = from the factored circuit" viaSmallSide
                viaFactored

        testCase "composition scores: zero unless the reading head is in a later layer, and ranked pairs read back"
        <| fun () ->
            use model = (Oracle "gpt2like").Model()
            use scores = Composition.AllScores(model, "V")
            Expect.sequenceEqual scores.AxisNames [ "layer1"; "head1"; "layer2"; "head2" ] "axis names"
            Expect.equal (scores.[1, 0, 1, 0]) 0.0 "same layer is zero"
            Expect.equal (scores.[1, 2, 0, 1]) 0.0 "earlier layer is zero"
            let top = scores.Top(3)
            Expect.equal top.Count 3 "three pairs"
            Expect.isTrue (top |> List.ofSeq |> List.forall (fun p -> p.SourceLayer < p.DestLayer && p.Score > 0.0))
                "pairs read from earlier layers"
            Expect.floatClose Accuracy.high top.[0].Score
                (scores.[top.[0].SourceLayer, top.[0].SourceHead, top.[0].DestLayer, top.[0].DestHead])
                "Top reads the tensor"
            Expect.throwsT<ArgumentException> (fun () -> Composition.AllScores(model, "X") |> ignore) "unknown mode"
    ]
