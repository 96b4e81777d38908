using TorchSharp;
using static TorchSharp.torch;

namespace Lens.Analysis;

/// <summary>
/// A matrix kept as the product A·B of two factors (TransformerLens's <c>FactoredMatrix</c>):
/// A [..., ldim, mdim], B [..., mdim, rdim], with leading (batch) dimensions broadcast together.
/// For a low-rank product (an attention head's OV or QK circuit: mdim = d_head) the SVD, the
/// eigenvalues and the Frobenius norm come from small matrices; the full product is formed only when
/// <see cref="AB"/> is asked for.
/// <para>The matrix owns its own handles on the factors (the caller's tensors stay the caller's):
/// dispose it. Members that return tensors (<see cref="AB"/>, <see cref="S"/>, ...) return new
/// tensors the caller owns; <see cref="A"/> and <see cref="B"/> are the matrix's own.</para>
/// <para><c>*</c> between a FactoredMatrix and a Tensor or another FactoredMatrix is the matrix
/// product (Python's <c>@</c>); <c>*</c> with a number scales.</para>
/// </summary>
public sealed class FactoredMatrix : IDisposable
{
    readonly Tensor _a, _b;
    FactoredSvd? _svd;

    public FactoredMatrix(Tensor a, Tensor b)
    {
        if (a.dim() < 2 || b.dim() < 2)
            throw new ArgumentException(
                $"FactoredMatrix factors need at least 2 dimensions; A is [{Dims(a.shape)}], B is [{Dims(b.shape)}]");
        if (a.shape[^1] != b.shape[^2])
            throw new ArgumentException($"FactoredMatrix factors must match on the inner dimension: A is " +
                $"[{Dims(a.shape)}], B is [{Dims(b.shape)}]");
        var lead = Broadcast(a.shape[..^2], b.shape[..^2])
            ?? throw new ArgumentException(
            $"FactoredMatrix leading dimensions do not broadcast: A is [{Dims(a.shape)}], B is [{Dims(b.shape)}]");
        Ldim = a.shape[^2]; Mdim = a.shape[^1]; Rdim = b.shape[^1];
        Shape = [.. lead, Ldim, Rdim];
        _a = a.broadcast_to([.. lead, Ldim, Mdim]).DetachFromDisposeScope();
        _b = b.broadcast_to([.. lead, Mdim, Rdim]).DetachFromDisposeScope();
    }

    /// <summary>The left factor [..., ldim, mdim] (owned by this matrix: do not dispose).</summary>
    public Tensor A => _a;
    /// <summary>The right factor [..., mdim, rdim] (owned by this matrix: do not dispose).</summary>
    public Tensor B => _b;
    public long Ldim { get; }
    public long Mdim { get; }
    public long Rdim { get; }
    /// <summary>The shape of the product: leading dims, then ldim, rdim.</summary>
    public long[] Shape { get; }
    public int Ndim => Shape.Length;

    /// <summary>The product A·B [..., ldim, rdim] (a new tensor; can be large).</summary>
    public Tensor AB => _a.matmul(_b);

    /// <summary>The reverse product B·A [..., mdim, mdim]; defined only for a square matrix (ldim = rdim).</summary>
    public Tensor BA => Ldim == Rdim ? _b.matmul(_a)
        : throw new InvalidOperationException($"B·A needs a square matrix (ldim = rdim); this one is [{Dims(Shape)}]");

    /// <summary>The transpose: Bᵀ·Aᵀ.</summary>
    public FactoredMatrix T
    {
        get
        {
            using var scope = NewDisposeScope();
            return new FactoredMatrix(_b.mT, _a.mT);
        }
    }

    // ---- products --------------------------------------------------------------------------------

    /// <summary>
    /// this · other for a matrix other [..., rdim, n]. As TransformerLens: when rdim &gt; mdim the
    /// product stays factored as A·(B·other); otherwise it becomes (A·B)·other.
    /// </summary>
    public FactoredMatrix Multiply(Tensor other)
    {
        if (other.dim() < 2)
            throw new ArgumentException(
                "a vector is not a matrix: use MultiplyVector to multiply by a vector (the result is a tensor)");
        if (other.shape[^2] != Rdim)
            throw new ArgumentException($"right matrix must match on the inner dimension: this is [{Dims(Shape)}], " +
                $"other is [{Dims(other.shape)}]");
        using var scope = NewDisposeScope();
        return Rdim > Mdim ? new FactoredMatrix(_a, _b.matmul(other)) : new FactoredMatrix(AB, other);
    }

    /// <summary>this · other, both factored: (this · other.A) · other.B.</summary>
    public FactoredMatrix Multiply(FactoredMatrix other)
    {
        using var left = Multiply(other.A);
        return left.Multiply(other.B);
    }

    /// <summary>
    /// other · this for a matrix other [..., n, ldim]: (other·A)·B when ldim &gt; mdim, else other·(A·B).
    /// </summary>
    public FactoredMatrix MultiplyLeft(Tensor other)
    {
        if (other.dim() < 2)
            throw new ArgumentException("a vector is not a matrix: use VectorMultiply to multiply a vector by this " +
                "matrix (the result is a tensor)");
        if (other.shape[^1] != Ldim)
            throw new ArgumentException($"left matrix must match on the inner dimension: other is " +
                $"[{Dims(other.shape)}], this is [{Dims(Shape)}]");
        using var scope = NewDisposeScope();
        return Ldim > Mdim ? new FactoredMatrix(other.matmul(_a), _b) : new FactoredMatrix(other, AB);
    }

    /// <summary>other · this, both factored: other.A · (other.B · this).</summary>
    public FactoredMatrix MultiplyLeft(FactoredMatrix other)
    {
        using var right = MultiplyLeft(other.B);
        return right.MultiplyLeft(other.A);
    }

    /// <summary>this · v for a vector v [rdim]: A·(B·v), a tensor [..., ldim].</summary>
    public Tensor MultiplyVector(Tensor v)
    {
        if (v.dim() != 1 || v.shape[0] != Rdim)
            throw new ArgumentException($"expected a vector of {Rdim} elements, got [{Dims(v.shape)}]");
        using var scope = NewDisposeScope();
        return _a.matmul(_b.matmul(v.unsqueeze(-1))).squeeze(-1).MoveToOuterDisposeScope();
    }

    /// <summary>v · this for a vector v [ldim]: (v·A)·B, a tensor [..., rdim].</summary>
    public Tensor VectorMultiply(Tensor v)
    {
        if (v.dim() != 1 || v.shape[0] != Ldim)
            throw new ArgumentException($"expected a vector of {Ldim} elements, got [{Dims(v.shape)}]");
        using var scope = NewDisposeScope();
        return v.unsqueeze(-2).matmul(_a).matmul(_b).squeeze(-2).MoveToOuterDisposeScope();
    }

    /// <summary>The matrix times a number (the number scales A).</summary>
    public FactoredMatrix Scale(double factor)
    {
        using var scope = NewDisposeScope();
        return new FactoredMatrix(_a * factor, _b);
    }

    public static FactoredMatrix operator *(FactoredMatrix m, Tensor other) => m.Multiply(other);
    public static FactoredMatrix operator *(Tensor other, FactoredMatrix m) => m.MultiplyLeft(other);
    public static FactoredMatrix operator *(FactoredMatrix left, FactoredMatrix right) => left.Multiply(right);
    public static FactoredMatrix operator *(FactoredMatrix m, double factor) => m.Scale(factor);
    public static FactoredMatrix operator *(double factor, FactoredMatrix m) => m.Scale(factor);

    // ---- spectra ---------------------------------------------------------------------------------

    /// <summary>
    /// The SVD of A·B without forming it (TransformerLens's method): A = Ua·Sa·Vaᵀ, B = Ub·Sb·Vbᵀ, then the
    /// SVD of the small middle Sa·Vaᵀ·Ub·Sb = Um·Sm·Vmᵀ gives U = Ua·Um, S = Sm, Vh = Vb·Vm. As in
    /// TransformerLens, <c>Vh</c> is [..., rdim, k] with A·B = U·diag(S)·Vhᵀ (it is V, not its transpose).
    /// Singular vectors are unique only up to sign. Computed once and kept.
    /// </summary>
    public FactoredSvd Svd()
    {
        var svd = CachedSvd();
        return new FactoredSvd(svd.U.alias(), svd.S.alias(), svd.Vh.alias());
    }

    FactoredSvd CachedSvd()
    {
        if (_svd is not null) return _svd;
        using var scope = NewDisposeScope();
        var (ua, sa, vha) = linalg.svd(Float(_a), fullMatrices: false);
        var (ub, sb, vhb) = linalg.svd(Float(_b), fullMatrices: false);
        var middle = sa.unsqueeze(-1) * vha.matmul(ub) * sb.unsqueeze(-2);
        var (um, sm, vhm) = linalg.svd(middle, fullMatrices: false);
        var u = ua.matmul(um).to(_a.dtype);
        var v = vhb.mT.matmul(vhm.mT).to(_a.dtype);
        _svd = new FactoredSvd(u.DetachFromDisposeScope(), sm.to(_a.dtype).DetachFromDisposeScope(),
            v.DetachFromDisposeScope());
        return _svd;
    }

    /// <summary>Left singular vectors [..., ldim, k].</summary>
    public Tensor U => CachedSvd().U.alias();
    /// <summary>Singular values [..., k], descending.</summary>
    public Tensor S => CachedSvd().S.alias();
    /// <summary>Right singular vectors as columns [..., rdim, k] (TransformerLens's naming: A·B =
    /// U·diag(S)·Vhᵀ).</summary>
    public Tensor Vh => CachedSvd().Vh.alias();

    /// <summary>
    /// Eigenvalues of the small side B·A [..., mdim] (complex): the nonzero eigenvalues of A·B, since
    /// B·A·v = λv gives A·B·(Av) = λ(Av). torch.linalg.eig order (LAPACK's), not sorted.
    /// </summary>
    public Tensor Eigenvalues
    {
        get
        {
            using var scope = NewDisposeScope();
            var ba = BA;
            var (values, _) = linalg.eig(Float(ba));
            return values.MoveToOuterDisposeScope();
        }
    }

    /// <summary>The Frobenius norm [...] as sqrt(Σ S²).</summary>
    public Tensor Norm()
    {
        using var scope = NewDisposeScope();
        return CachedSvd().S.pow(2).sum(-1).sqrt().MoveToOuterDisposeScope();
    }

    /// <summary>The rank-k part S·Vhᵀ [..., k, rdim]: the matrix with its left orthogonal factor U removed.</summary>
    public Tensor CollapseL()
    {
        using var scope = NewDisposeScope();
        var svd = CachedSvd();
        return (svd.S.unsqueeze(-1) * svd.Vh.mT).MoveToOuterDisposeScope();
    }

    /// <summary>U·S [..., ldim, k]: the matrix with its right orthogonal factor removed.</summary>
    public Tensor CollapseR()
    {
        using var scope = NewDisposeScope();
        var svd = CachedSvd();
        return (svd.U * svd.S.unsqueeze(-2)).MoveToOuterDisposeScope();
    }

    /// <summary>The same matrix as (U·√S)·(√S·Vhᵀ): both factors carry half the spectrum.</summary>
    public FactoredMatrix MakeEven()
    {
        using var scope = NewDisposeScope();
        var svd = CachedSvd();
        var root = svd.S.sqrt();
        return new FactoredMatrix(svd.U * root.unsqueeze(-2), root.unsqueeze(-1) * svd.Vh.mT);
    }

    /// <summary>The top-left k×k corner of A·B (and of every leading dimension), computed from k rows of A and k
    /// columns of B.</summary>
    public Tensor GetCorner(int k = 3)
    {
        if (k <= 0) throw new ArgumentOutOfRangeException(nameof(k), "corner size must be positive");
        using var scope = NewDisposeScope();
        var corner = _a.narrow(-2, 0, Math.Min(k, Ldim)).matmul(_b.narrow(-1, 0, Math.Min(k, Rdim)));
        for (int d = 0; d < corner.dim() - 2; d++) corner = corner.narrow(d, 0, Math.Min(k, corner.shape[d]));
        return corner.MoveToOuterDisposeScope();
    }

    // ---- shape -----------------------------------------------------------------------------------

    /// <summary>Indexes the leading dimensions only, e.g. <c>ov[layer, head]</c>; negative indices count from the
    /// end.</summary>
    public FactoredMatrix this[params long[] leading]
    {
        get
        {
            if (leading.Length > Shape.Length - 2)
                throw new ArgumentException($"a FactoredMatrix of shape [{Dims(Shape)}] has {Shape.Length - 2} " +
                    $"leading dimensions; got {leading.Length} indices (index only the leading dimensions)");
            using var scope = NewDisposeScope();
            Tensor a = _a, b = _b;
            for (int d = 0; d < leading.Length; d++)
            {
                long size = Shape[d], i = leading[d] < 0 ? leading[d] + size : leading[d];
                if (i < 0 || i >= size)
                    throw new ArgumentOutOfRangeException(nameof(leading),
                        $"index {leading[d]} is out of range for leading dimension {d} of size {size}");
                a = a.select(0, i); b = b.select(0, i);
            }
            return new FactoredMatrix(a, b);
        }
    }

    /// <summary>A new leading dimension of size 1 at position k (as torch.unsqueeze on both factors).</summary>
    public FactoredMatrix Unsqueeze(long k)
    {
        using var scope = NewDisposeScope();
        return new FactoredMatrix(_a.unsqueeze(k), _b.unsqueeze(k));
    }

    /// <summary>NumPy/torch broadcasting of two shapes (aligned at the right; 1 stretches), or null when they
    /// clash.</summary>
    static long[]? Broadcast(long[] x, long[] y)
    {
        int n = Math.Max(x.Length, y.Length);
        var result = new long[n];
        for (int i = 1; i <= n; i++)
        {
            long p = i <= x.Length ? x[^i] : 1, q = i <= y.Length ? y[^i] : 1;
            if (p != q && p != 1 && q != 1) return null;
            result[^i] = p == 1 ? q : p;
        }
        return result;
    }

    static Tensor Float(Tensor t) =>
        t.dtype is ScalarType.Float16 or ScalarType.BFloat16 ? t.to(ScalarType.Float32) : t;

    internal static string Dims(IEnumerable<long> shape) => string.Join(", ", shape);

    public void Dispose()
    {
        _a.Dispose(); _b.Dispose();
        _svd?.Dispose(); _svd = null;
    }

    public override string ToString() => $"FactoredMatrix: Shape([{Dims(Shape)}]), Hidden Dim({Mdim})";
}

/// <summary>The SVD of a <see cref="FactoredMatrix"/>: A·B = U·diag(S)·Vhᵀ. Owns its tensors.</summary>
public sealed record FactoredSvd(Tensor U, Tensor S, Tensor Vh) : IDisposable
{
    public void Dispose() { U.Dispose(); S.Dispose(); Vh.Dispose(); }
}
