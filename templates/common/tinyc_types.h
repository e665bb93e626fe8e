/*
 * tinyc kernel parameter types, defined once for every kernel.
 *
 * Each kernel call in model.c takes one `static const` params struct, written with C99
 * designated initialisers, then its tensors:
 *     tinyc_fully_connected_s8(&tinyc_l11_fc_params, input, output);
 * A params struct groups its values as CMSIS-NN does (cmsis_nn_dims, cmsis_nn_conv_params,
 * cmsis_nn_per_channel_quant_params):
 *   .dims   shapes and loop extents                              tinyc_<family>_dims
 *   .op     the op's own values: offsets (zero points), strides,
 *           padding, activation bounds                           tinyc_<family>_op_params
 *   .quant  requantization multipliers and shifts                tinyc_*_quant_params
 * then the constant arrays it reads (filter, bias, ...). The struct of kernel tinyc_<k>_s8
 * is tinyc_<k>_params_s8.
 *
 * All the types are in this one small header (rather than each kernel's template) so that a
 * group type shared by several kernels is defined once; it costs nothing when unused.
 * Offsets follow TFLite: input_offset = -input zero point, output_offset = +output zero point.
 */
#ifndef TINYC_TYPES_H
#define TINYC_TYPES_H

#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------------ quantization groups */

/* One requantization (x * multiplier * 2^(shift - 31), multiplier a Q31). */
typedef struct {
    int32_t multiplier;
    int32_t shift;
} tinyc_per_tensor_quant_params;

/* One (multiplier, shift) per output channel. */
typedef struct {
    const int32_t *multiplier;
    const int32_t *shift;
} tinyc_per_channel_quant_params;

/* FULLY_CONNECTED: per output channel (per_channel 1) or one entry for all (per_channel 0). */
typedef struct {
    const int32_t *multiplier;
    const int32_t *shift;
    int32_t per_channel;
} tinyc_fc_quant_params;

/* ------------------------------------------------------------------------ element counts */

typedef struct {
    int32_t size;   /* elements */
} tinyc_flat_dims;

/* ------------------------------------------------------------- encoded (compressed) weights */

/*
 * One encoded weight tensor, consumed in kernel order (rows, filters).
 * kind: 1 sparse (int8 values + gap_bits-bit gaps), 2 Huffman values, 3 sparse with
 * Huffman-coded values and gaps. A sparse entry skips `gap` zeros, then holds one value;
 * fillers (value 0) bridge gaps longer than 2^gap_bits - 1.
 */
typedef struct {
    int32_t kind;
    const int8_t *values;          /* kind 1 */
    int32_t gap_bits;              /* kind 1 */
    int32_t entries;               /* kinds 1, 3 */
    const uint8_t *value_stream;   /* kinds 2, 3 */
    const int16_t *value_counts;
    const uint8_t *value_symbols;
    int32_t value_lut_bits;
    const uint8_t *gap_stream;     /* kinds 1, 3 */
    const int16_t *gap_counts;     /* kind 3 */
    const uint8_t *gap_symbols;
    int32_t gap_lut_bits;
} tinyc_encoded_weights;

#define TINYC_WEIGHTS_SPARSE 1
#define TINYC_WEIGHTS_HUFFMAN 2
#define TINYC_WEIGHTS_SPARSE_HUFFMAN 3

/*
 * Folded requantization of the specialised kernels: per output channel the record
 * {acc_init, multiplier, khi, e} (records[4 * o ...]), and how it rounds (TINYC_RQ_*).
 */
typedef struct {
    const int32_t *records;
    int32_t mode;
} tinyc_folded_quant_params;

/* ---------------------------------------------------------- CONV_2D, DEPTHWISE_CONV_2D */

typedef struct {
    int32_t batches, input_h, input_w, input_ch;
    int32_t output_h, output_w, output_ch;
    int32_t filter_h, filter_w, filter_ch;   /* filter_ch < input_ch: grouped convolution */
} tinyc_conv_dims;

typedef struct {
    int32_t batches, input_h, input_w, input_ch;
    int32_t output_h, output_w, output_ch;   /* output_ch = input_ch * depth_multiplier */
    int32_t filter_h, filter_w, depth_multiplier;
} tinyc_depthwise_conv_dims;

typedef struct {
    int32_t stride_h, stride_w, dilation_h, dilation_w;
    int32_t pad_h, pad_w;                    /* top and left; bottom/right taps are skipped */
    int32_t input_offset, output_offset;
    int32_t act_min, act_max;
} tinyc_conv_op_params;

/* acc_init[o] = bias[o] + input_offset * sum(filter[o]), or NULL where it would leave int32. */
typedef struct {
    tinyc_conv_dims dims;
    tinyc_conv_op_params op;
    tinyc_per_channel_quant_params quant;
    const int8_t *filter;                    /* [output_ch][filter_h][filter_w][filter_ch] */
    const int32_t *bias;                     /* [output_ch] or NULL */
    const int32_t *acc_init;                 /* [output_ch] or NULL */
} tinyc_conv_2d_params_s8;

typedef struct {
    tinyc_depthwise_conv_dims dims;
    tinyc_conv_op_params op;
    tinyc_per_channel_quant_params quant;
    const int8_t *filter;                    /* [1][filter_h][filter_w][output_ch] */
    const int32_t *bias;                     /* [output_ch] or NULL */
    const int32_t *acc_init;                 /* [output_ch] or NULL */
} tinyc_depthwise_conv_2d_params_s8;

/* Specialised CONV_2D (im2col + GEMM): weights pair-interleaved, depth padded to depth4. */
typedef struct {
    tinyc_conv_dims dims;
    tinyc_conv_op_params op;
    tinyc_folded_quant_params quant;
    int32_t depth4;                          /* filter_h * filter_w * input_ch, rounded up to 4 */
    const int8_t *filter;                    /* int8 weights, or NULL */
    const int16_t *filter16;                 /* int16 weights (--optimize speed), or NULL */
} tinyc_conv_2d_gemm_params_s8;

/* Specialised DEPTHWISE_CONV_2D (channel planes); the taps paired at generation time. */
typedef struct {
    tinyc_depthwise_conv_dims dims;
    tinyc_conv_op_params op;
    tinyc_folded_quant_params quant;
    int32_t plane_w;                         /* int16 per channel-plane row: even */
    int32_t strip;                           /* channels per pass (the scratch holds their planes) */
    const int32_t *taps;                     /* per channel: pairs of int16 taps (see the kernel) */
} tinyc_depthwise_conv_2d_planar_params_s8;

/* Encoded weights: scratch starts with lut_bytes of Huffman lookup tables. */
typedef struct {
    tinyc_conv_dims dims;
    tinyc_conv_op_params op;
    tinyc_per_channel_quant_params quant;
    tinyc_encoded_weights filter;
    const int32_t *bias;                     /* [output channels], or NULL */
    const int16_t *bias16;                   /* or the same values stored in int16 (they fit), or NULL */
    int32_t lut_bytes;
} tinyc_conv_2d_encoded_params_s8;

typedef struct {
    tinyc_depthwise_conv_dims dims;
    tinyc_conv_op_params op;
    tinyc_per_channel_quant_params quant;
    tinyc_encoded_weights filter;
    const int32_t *bias;                     /* [output channels], or NULL */
    const int16_t *bias16;                   /* or the same values stored in int16 (they fit), or NULL */
    int32_t lut_bytes;
} tinyc_depthwise_conv_2d_encoded_params_s8;

/* -------------------------------------------------------------------- FULLY_CONNECTED */

typedef struct {
    int32_t batches, accum_depth, output_depth;
} tinyc_fc_dims;

typedef struct {
    int32_t input_offset, filter_offset, output_offset;
    int32_t act_min, act_max;
} tinyc_fc_op_params;

typedef struct {
    tinyc_fc_dims dims;
    tinyc_fc_op_params op;
    tinyc_fc_quant_params quant;
    const int8_t *filter;                    /* [output_depth][accum_depth] */
    const int32_t *bias;                     /* [output_depth] or NULL */
} tinyc_fully_connected_params_s8;

/* Specialised FULLY_CONNECTED: weights pair-interleaved, depth padded to depth4. */
typedef struct {
    tinyc_fc_dims dims;
    tinyc_fc_op_params op;
    tinyc_folded_quant_params quant;
    int32_t depth4;                          /* accum_depth rounded up to 4 */
    const int8_t *filter;                    /* int8 weights, or NULL */
    const int16_t *filter16;                 /* int16 weights (--optimize speed), or NULL */
} tinyc_fully_connected_gemm_params_s8;

/* Sparse and Huffman kernels; their weights are symmetric (filter_offset 0). */
typedef struct {
    tinyc_fc_dims dims;
    tinyc_fc_op_params op;
    tinyc_fc_quant_params quant;
    tinyc_encoded_weights filter;
    const int32_t *bias;                     /* [output channels], or NULL */
    const int16_t *bias16;                   /* or the same values stored in int16 (they fit), or NULL */
    int32_t lut_bytes;                       /* scratch bytes of Huffman lookup tables */
} tinyc_fully_connected_encoded_params_s8;

/* ------------------------------------------------------------------ ADD, SUB, MUL */

/* Output extents (outermost first) and each input's element strides along them; a stride of
 * 0 repeats the input (broadcast). Unused outer dims have extent 1. */
#define TINYC_BROADCAST_MAX_DIMS 6
typedef struct {
    int32_t extent[TINYC_BROADCAST_MAX_DIMS];
    int32_t input1_stride[TINYC_BROADCAST_MAX_DIMS];
    int32_t input2_stride[TINYC_BROADCAST_MAX_DIMS];
} tinyc_broadcast_dims;

typedef struct {
    int32_t input1_offset, input2_offset;
    int32_t left_shift;                      /* headroom of the common scale (20) */
    int32_t output_offset;
    int32_t act_min, act_max;
} tinyc_add_op_params;

typedef struct {
    tinyc_per_tensor_quant_params input1, input2, output;
} tinyc_add_quant_params;

/* ADD and SUB */
typedef struct {
    tinyc_broadcast_dims dims;
    tinyc_add_op_params op;
    tinyc_add_quant_params quant;
} tinyc_add_params_s8;

typedef struct {
    int32_t input1_offset, input2_offset, output_offset;
    int32_t act_min, act_max;
} tinyc_mul_op_params;

typedef struct {
    tinyc_broadcast_dims dims;
    tinyc_mul_op_params op;
    tinyc_per_tensor_quant_params quant;
} tinyc_mul_params_s8;

/* ------------------------------------------------------- AVERAGE_POOL_2D, MAX_POOL_2D */

typedef struct {
    int32_t batches, input_h, input_w, depth;
    int32_t output_h, output_w;
    int32_t filter_h, filter_w;
} tinyc_pool_dims;

typedef struct {
    int32_t stride_h, stride_w, pad_h, pad_w;
    int32_t act_min, act_max;
} tinyc_pool_op_params;

typedef struct {
    tinyc_pool_dims dims;
    tinyc_pool_op_params op;
} tinyc_pool_params_s8;

/* --------------------------------------------------------------------------- SOFTMAX */

typedef struct {
    int32_t rows, depth;                     /* normalised along depth */
} tinyc_softmax_dims;

typedef struct {
    int32_t input_beta_multiplier, input_beta_left_shift;
    int32_t diff_min;                        /* differences below it give exp 0 */
} tinyc_softmax_quant_params;

typedef struct {
    tinyc_softmax_dims dims;
    tinyc_softmax_quant_params quant;
} tinyc_softmax_params_s8;

/* ------------------------------------------------------------------------------ MEAN */

/* The input viewed as [outer][reduce0][mid][reduce1][inner]. */
typedef struct {
    int32_t outer, reduce0, mid, reduce1, inner;
} tinyc_reduce_dims;

typedef struct {
    int32_t input_zero_point_n;              /* input zero point * reduced element count */
    int32_t output_offset;
} tinyc_mean_op_params;

typedef struct {
    tinyc_reduce_dims dims;
    tinyc_mean_op_params op;
    tinyc_per_tensor_quant_params quant;     /* 1/n folded in */
} tinyc_mean_params_s8;

/* ------------------------------------------------------------------------ PAD, PADV2 */

/* Input extents (outermost first; the innermost in bytes) and the padding before and after. */
#define TINYC_PAD_MAX_DIMS 6
typedef struct {
    int32_t extent[TINYC_PAD_MAX_DIMS];
    int32_t before[TINYC_PAD_MAX_DIMS];
    int32_t after[TINYC_PAD_MAX_DIMS];
} tinyc_pad_dims;

typedef struct {
    int32_t pad_value;                       /* the byte written into the padding */
} tinyc_pad_op_params;

typedef struct {
    tinyc_pad_dims dims;
    tinyc_pad_op_params op;
} tinyc_pad_params_s8;

/* ------------------------------------------------------------------- CONCATENATION */

/* One input: `outer` blocks of block_bytes, placed output_block_bytes apart in the output,
 * the first at output_start. */
typedef struct {
    int32_t outer, block_bytes, output_block_bytes;
    int32_t output_start;
} tinyc_concatenation_params;

/* ------------------------------------------------------ elementwise activations */

typedef struct {
    int32_t input_offset, output_offset;
    int32_t act_min, act_max;
} tinyc_relu_op_params;

/* RELU, RELU6, RELU_N1_TO_1 */
typedef struct {
    tinyc_flat_dims dims;
    tinyc_relu_op_params op;
    tinyc_per_tensor_quant_params quant;
} tinyc_relu_params_s8;

typedef struct {
    int32_t input_offset, output_offset;
} tinyc_leaky_relu_op_params;

typedef struct {
    tinyc_per_tensor_quant_params identity;  /* inputs at or above the zero point */
    tinyc_per_tensor_quant_params alpha;     /* the others, |input_scale * alpha / output_scale| */
    int32_t alpha_negate;                    /* 1 for a negative alpha */
} tinyc_leaky_relu_quant_params;

typedef struct {
    tinyc_flat_dims dims;
    tinyc_leaky_relu_op_params op;
    tinyc_leaky_relu_quant_params quant;
} tinyc_leaky_relu_params_s8;

typedef struct {
    int32_t input_zero_point, output_zero_point;
} tinyc_hard_swish_op_params;

/* Q15 multipliers with their exponents (TFLite HardSwishParams). */
typedef struct {
    int32_t output_multiplier, output_exponent;
    int32_t reluish_multiplier, reluish_exponent;
} tinyc_hard_swish_quant_params;

typedef struct {
    tinyc_flat_dims dims;
    tinyc_hard_swish_op_params op;
    tinyc_hard_swish_quant_params quant;
} tinyc_hard_swish_params_s8;

/* LOGISTIC, TANH: a 256-entry table indexed by the input byte. */
typedef struct {
    tinyc_flat_dims dims;
    const int8_t *table;
} tinyc_lookup_table_params_s8;

/* ---------------------------------------------------------------- QUANTIZE, DEQUANTIZE */

/* real = scale * (q - zero_point) */
typedef struct {
    float scale;
    int32_t zero_point;
} tinyc_affine_quant_params;

/* float -> int (QUANTIZE) and int -> float (DEQUANTIZE) */
typedef struct {
    tinyc_flat_dims dims;
    tinyc_affine_quant_params quant;
} tinyc_affine_params;

typedef struct {
    int32_t input_zero_point, output_zero_point;
} tinyc_requantize_op_params;

/* int -> int (QUANTIZE of an int8/uint8 tensor) */
typedef struct {
    tinyc_flat_dims dims;
    tinyc_requantize_op_params op;
    tinyc_per_tensor_quant_params quant;
} tinyc_requantize_params;

/* ------------------------------------------- 16x8: int16 activations, int8 weights (_s16) */

/* CONV_2D and DEPTHWISE_CONV_2D, 16x8: int64 accumulators and bias; quant holds Q31
 * multipliers (the kernels reduce them to Q15, as TFLite's int64 requantization does). */
typedef struct {
    tinyc_conv_dims dims;
    tinyc_conv_op_params op;
    tinyc_per_channel_quant_params quant;
    const int8_t *filter;                    /* [output_ch][filter_h][filter_w][filter_ch] */
    const int64_t *bias;                     /* [output_ch] or NULL */
} tinyc_conv_2d_params_s16;

typedef struct {
    tinyc_depthwise_conv_dims dims;
    tinyc_conv_op_params op;
    tinyc_per_channel_quant_params quant;
    const int8_t *filter;                    /* [1][filter_h][filter_w][output_ch] */
    const int64_t *bias;                     /* [output_ch] or NULL */
} tinyc_depthwise_conv_2d_params_s16;

typedef struct {
    tinyc_fc_dims dims;
    tinyc_fc_op_params op;
    tinyc_fc_quant_params quant;
    const int8_t *filter;                    /* [output_depth][accum_depth] */
    const int64_t *bias;                     /* [output_depth] or NULL */
} tinyc_fully_connected_params_s16;

/* TRANSPOSE_CONV: dims.input_* / output_* as in the graph; filter [output_ch][h][w][input_ch];
 * op.pad_h/pad_w the padding of the equivalent forward convolution (output -> input). */
typedef struct {
    tinyc_conv_dims dims;
    tinyc_conv_op_params op;
    tinyc_per_channel_quant_params quant;
    const int8_t *filter;
    const int32_t *bias;                     /* [output_ch] or NULL */
} tinyc_transpose_conv_params_s8;

typedef struct {
    tinyc_conv_dims dims;
    tinyc_conv_op_params op;
    tinyc_per_channel_quant_params quant;
    const int8_t *filter;
    const int64_t *bias;                     /* [output_ch] or NULL */
} tinyc_transpose_conv_params_s16;

/* ADD and SUB, 16x8: the int8 params with left_shift 15. */
typedef tinyc_add_params_s8 tinyc_add_params_s16;

/* MUL, 16x8 */
typedef tinyc_mul_params_s8 tinyc_mul_params_s16;

/* AVERAGE_POOL_2D, MAX_POOL_2D, 16x8 */
typedef tinyc_pool_params_s8 tinyc_pool_params_s16;

/* LEAKY_RELU, 16x8 */
typedef tinyc_leaky_relu_params_s8 tinyc_leaky_relu_params_s16;

/* LOGISTIC and TANH, 16x8: the input rescale to sigmoid-table steps of 1/(3 * 4096):
 * (x * input_multiplier + rounding) >> input_shift. */
typedef struct {
    int32_t input_multiplier;
    int32_t input_shift;                     /* right shift, rounding half up; 0..31 */
} tinyc_sigmoid_lut_quant_params;

typedef struct {
    tinyc_flat_dims dims;
    tinyc_sigmoid_lut_quant_params quant;
} tinyc_logistic_params_s16;

typedef tinyc_logistic_params_s16 tinyc_tanh_params_s16;

/* MEAN, 16x8: zero points are 0 (TFLite requires it), so no offsets. */
typedef struct {
    tinyc_reduce_dims dims;
    tinyc_per_tensor_quant_params quant;     /* 1/n folded in */
} tinyc_mean_params_s16;

/* SOFTMAX, 16x8 (int16 -> int16): quant takes a difference to the row's maximum to steps of
 * the exp table (10/65535 each), with double rounding. */
typedef struct {
    tinyc_softmax_dims dims;
    tinyc_per_tensor_quant_params quant;
} tinyc_softmax_params_s16;

/* ------------------------------------------------------------------------------ SVDF */
typedef struct {
    int32_t batches, input_size, filters, memory, units, rank;   /* filters = units * rank */
} tinyc_svdf_dims;

typedef struct {
    int32_t input_offset, state_zero_point, output_offset;
} tinyc_svdf_op_params;

typedef struct {
    tinyc_per_tensor_quant_params feature;   /* input x feature weights -> state */
    tinyc_per_tensor_quant_params time;      /* state x time weights -> output */
} tinyc_svdf_quant_params;

/* int16 state and time weights (TFLite's int8 SVDF) */
typedef struct {
    tinyc_svdf_dims dims;
    tinyc_svdf_op_params op;
    tinyc_svdf_quant_params quant;
    const int8_t *weights_feature;           /* [filters][input_size] */
    const int16_t *weights_time;             /* [filters][memory] */
    const int32_t *bias;                     /* [units] or NULL */
    int16_t *state;                          /* [batches][filters][memory], kept between calls */
} tinyc_svdf_params_s8;

/* int8 state and time weights (TFLM's 8-bit SVDF) */
typedef struct {
    tinyc_svdf_dims dims;
    tinyc_svdf_op_params op;
    tinyc_svdf_quant_params quant;
    const int8_t *weights_feature;
    const int8_t *weights_time;
    const int32_t *bias;
    int8_t *state;
} tinyc_svdf_state_s8_params_s8;

/* ------------------------------------------------------ UNIDIRECTIONAL_SEQUENCE_LSTM */
/* Gates in TFLite's order: 0 input, 1 forget, 2 cell, 3 output. */
typedef struct {
    int32_t batches, steps, input_size, cells;
    int32_t time_major;                      /* input [steps][batches][input] instead of [batches][steps][input] */
} tinyc_lstm_dims;

typedef struct {
    int32_t cell_shift;                      /* 30 + log2(cell state scale): input gate x cell gate -> cell */
    int32_t cell_clip;                       /* 0: none */
    int32_t cell_integer_bits;               /* of the cell state as fixed point: 15 + log2(cell scale) */
    int32_t hidden_offset;                   /* output state zero point */
} tinyc_lstm_op_params;

typedef struct {
    tinyc_per_tensor_quant_params input_to[4];      /* input x weights -> Q3.12 gate */
    tinyc_per_tensor_quant_params recurrent_to[4];  /* output state x weights -> Q3.12 gate */
    tinyc_per_tensor_quant_params hidden;           /* Q0.15 x Q0.15 -> output state */
} tinyc_lstm_quant_params;

typedef struct {
    tinyc_lstm_dims dims;
    tinyc_lstm_op_params op;
    tinyc_lstm_quant_params quant;
    const int8_t *input_weights[4];          /* [cells][input_size] */
    const int8_t *recurrent_weights[4];      /* [cells][cells] */
    const int32_t *input_bias[4];            /* bias - input zero point x row sums */
    const int32_t *recurrent_bias[4];        /* - output state zero point x row sums */
    int8_t *output_state;                    /* [batches][cells], kept between calls */
    int16_t *cell_state;                     /* [batches][cells], kept between calls */
} tinyc_lstm_params_s8;

/* ------------------------------------------ STRIDED_SLICE, TRANSPOSE, SLICE, SPLIT (bytes) */

/* out = the input bytes at start + sum(i[d] * stride[d]) for every output index i, the last
 * dim a contiguous run of extent[last] bytes (stride 1). Unused outer dims have extent 1. */
#define TINYC_COPY_MAX_DIMS 6
typedef struct {
    int32_t extent[TINYC_COPY_MAX_DIMS];
    int32_t stride[TINYC_COPY_MAX_DIMS];     /* input bytes between neighbours along each dim */
    int32_t start;                           /* input byte of the first output byte */
} tinyc_strided_copy_dims;

typedef struct {
    tinyc_strided_copy_dims dims;
} tinyc_strided_copy_params_s8;

/* ------------------------------------------------------------------------ REDUCE_MAX */

/* The input viewed as MEAN's [outer][reduce0][mid][reduce1][inner]; no quantization (the
 * reference requires the output to share the input's). */
typedef struct {
    tinyc_reduce_dims dims;
} tinyc_reduce_max_params_s8;

/* ---------------------------------------------------------------------------- GATHER */

/* params [batches][outer][axis_size][inner_bytes] -> output [batches][outer][coords][inner_bytes] */
typedef struct {
    int32_t batches, outer, coords, axis_size;
    int32_t inner_bytes;                     /* bytes of one gathered run */
} tinyc_gather_dims;

typedef struct {
    tinyc_gather_dims dims;
} tinyc_gather_params_s8;

/* ------------------------------------------------ int32 ADD and comparisons, SELECT */

/* tinyc_binary_params_s32.op.kind */
#define TINYC_BINARY_ADD 0
#define TINYC_BINARY_EQUAL 1
#define TINYC_BINARY_NOT_EQUAL 2
#define TINYC_BINARY_LESS 3
#define TINYC_BINARY_LESS_EQUAL 4
#define TINYC_BINARY_GREATER 5
#define TINYC_BINARY_GREATER_EQUAL 6

typedef struct {
    int32_t kind;                            /* TINYC_BINARY_* */
    int32_t act_min, act_max;                /* ADD's fused activation on int32 */
} tinyc_binary_op_params;

typedef struct {
    tinyc_broadcast_dims dims;
    tinyc_binary_op_params op;
} tinyc_binary_params_s32;

/* Output extents (outermost first) and the element strides of the condition and of x and y
 * along them; 0 repeats that input (broadcast). */
typedef struct {
    int32_t extent[TINYC_BROADCAST_MAX_DIMS];
    int32_t condition_stride[TINYC_BROADCAST_MAX_DIMS];
    int32_t x_stride[TINYC_BROADCAST_MAX_DIMS];
    int32_t y_stride[TINYC_BROADCAST_MAX_DIMS];
} tinyc_select_dims;

typedef struct {
    tinyc_select_dims dims;
    int32_t element_bytes;                   /* bytes of one value */
} tinyc_select_params_s8;

/* ---------------------------------------------------------------------- BATCH_MATMUL */

/* Output [batch0][batch1][batch2][rows][cols]; element strides of both operands. */
#define TINYC_MATMUL_MAX_BATCH_DIMS 3
typedef struct {
    int32_t batch[TINYC_MATMUL_MAX_BATCH_DIMS];            /* unused outer dims have extent 1 */
    int32_t lhs_batch_stride[TINYC_MATMUL_MAX_BATCH_DIMS]; /* 0: the operand repeats (broadcast) */
    int32_t rhs_batch_stride[TINYC_MATMUL_MAX_BATCH_DIMS];
    int32_t rows, depth, cols;
    int32_t lhs_row_stride, lhs_depth_stride;              /* lhs[i][k]; adj_x swaps them */
    int32_t rhs_depth_stride, rhs_col_stride;              /* rhs[k][j]; adj_y swaps them */
} tinyc_batch_matmul_dims;

typedef struct {
    int32_t lhs_offset, rhs_offset, output_offset;         /* -zero points, +output zero point */
    int32_t act_min, act_max;
} tinyc_batch_matmul_op_params;

typedef struct {
    tinyc_batch_matmul_dims dims;
    tinyc_batch_matmul_op_params op;
    tinyc_per_tensor_quant_params quant;
} tinyc_batch_matmul_params_s8;

/* ------------------------------------------- CONV_2D / DEPTHWISE_CONV_2D for SIMD cores
 * (templates/ops/conv_2d_simd.c.j2, depthwise_conv_2d_simd.c.j2; tinyc/codegen/ops/simd.py)
 * Per-channel arrays padded to whole vector blocks: acc_init = bias + input_offset * sum(w),
 * and the requantization as gemmlowp's two steps: x << left_shift, rounding doubling high
 * multiply, rounding divide by 2^right_shift (both shifts >= 0: shift = left - right). */
typedef struct {
    const int32_t *acc_init, *multiplier, *left_shift, *right_shift;
} tinyc_simd_quant_params;

typedef struct {
    int32_t k, k4, oc8;       /* window length (filter_h * filter_w * input_ch), rounded up to 4;
                                 output channels rounded up to 8 */
    int32_t direct;           /* 1x1, stride 1, no padding, k == k4: the input rows are the windows */
    int32_t pair16;           /* no weight is -128: two products fit an int16 lane (NEON step) */
} tinyc_simd_gemm_dims;

typedef struct {
    tinyc_conv_dims dims;
    tinyc_conv_op_params op;
    tinyc_simd_gemm_dims gemm;
    tinyc_simd_quant_params quant;
    const int8_t *filter;     /* [oc8 / 8][k4 / 2][8 channels][2 k] ("OC8xK2"), zero padded */
} tinyc_conv_2d_simd_params_s8;

typedef struct {
    tinyc_depthwise_conv_dims dims;
    tinyc_conv_op_params op;
    int32_t plane_h, plane_w; /* the zero-point padded input plane every window lies inside */
    int32_t pair16;           /* no weight is -128 (NEON step) */
    tinyc_simd_quant_params quant;
    const int8_t *filter;     /* the model's [filter_h][filter_w][channels], then 16 zero bytes */
} tinyc_depthwise_conv_2d_simd_params_s8;

#endif /* TINYC_TYPES_H */
